/**
 * @module Serves the dashboard (docs/ui.md): the files `npm run build` put in dist/ui/app (vite,
 * from src/ui/app), under /ui/, and `GET /` redirects there. Every asset comes from the agent (no
 * CDN); the page talks to the same agent's API with the caller's token.
 */
import { readFile, realpath } from 'node:fs/promises';
import { extname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { errors } from '../core/errors.js';

export interface UiRoutesOptions {
  /** The built dashboard (index.html and assets/). Default: dist/ui/app beside this module. */
  readonly dir?: string;
}

/** Where `npm run build` writes the dashboard: vite's outDir, beside dist/ui/serve.js. */
export const DEFAULT_UI_DIR = fileURLToPath(new URL('./app/', import.meta.url));

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};

/**
 * The page loads only its own files and talks only to its own agent: no inline script, no other
 * origin, never framed (clickjacking the maintenance and KV buttons).
 */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self'; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/**
 * The dashboard's routes, for the API server's `plugins`: `GET /` and `GET /ui` redirect to
 * `/ui/`; `GET /ui/*` answers the built file (index.html for `/ui/`). Vite names assets by
 * content hash, so they are cached for a year; index.html is revalidated every time.
 */
export function uiRoutes(options: UiRoutesOptions = {}): (app: FastifyInstance) => void {
  const dir = options.dir ?? DEFAULT_UI_DIR;
  return (app) => {
    const redirect = async (_req: unknown, reply: FastifyReply): Promise<FastifyReply> =>
      reply.redirect('/ui/', 302);
    app.get('/', redirect);
    app.get('/ui', redirect);
    app.get('/ui/*', async (req, reply) => {
      const rel = (req.params as { '*': string })['*'];
      const file = await builtFile(dir, rel === '' ? 'index.html' : rel);
      if (file === undefined) {
        // Not built (a checkout without `npm run build`), or no such file.
        throw errors.routeNotFound('GET', req.url.split('?')[0] ?? '');
      }
      void reply
        .headers(SECURITY_HEADERS)
        .header('content-type', CONTENT_TYPES[extname(file.path)] ?? 'application/octet-stream')
        .header(
          'cache-control',
          rel.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
        );
      return reply.send(file.bytes);
    });
  };
}

/** The file at `rel` under `dir`, or undefined when absent or outside `dir` (`..`, links). */
async function builtFile(
  dir: string,
  rel: string,
): Promise<{ path: string; bytes: Buffer } | undefined> {
  if (rel.split('/').some((part) => part === '..' || part.startsWith('.'))) return undefined;
  try {
    const root = await realpath(dir);
    const path = await realpath(join(root, rel));
    if (!path.startsWith(root + sep)) return undefined;
    return { path, bytes: await readFile(path) };
  } catch {
    return undefined;
  }
}
