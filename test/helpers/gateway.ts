/** @module Test helpers: real upstream servers on port 0 and an in-process gateway. */
import { once } from 'node:events';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { describe } from 'node:test';
import { request } from 'undici';
import { until as pollUntil } from './until.js';
import { silentLogger } from '../../src/core/logger.js';
import { resolveGatewayOptions } from '../../src/gateway/options.js';
import { startGateway, type GatewayDeps, type RunningGateway } from '../../src/gateway/gateway.js';
import type { NativeHttp1Support } from '../../src/proxy/http1/native-support.js';

export interface Upstream {
  readonly id: string;
  readonly server: Server;
  readonly port: number;
  hits: number;
  /** Status answered (default 200). */
  status: number;
  /** The last requests' headers and urls, newest last. */
  readonly seen: { url: string; method: string; headers: IncomingHttpHeaders }[];
  /** Replaces the default answer. */
  handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  close(): Promise<void>;
}

/** An upstream answering `id` as text/plain (or `handler`'s answer). */
export async function startUpstream(id: string): Promise<Upstream> {
  const u = { id, hits: 0, status: 200, seen: [], handler: undefined } as unknown as Upstream & {
    seen: Upstream['seen'];
  };
  const server = createServer((req, res) => {
    u.hits++;
    u.seen.push({ url: req.url ?? '', method: req.method ?? '', headers: req.headers });
    if (u.seen.length > 100) u.seen.shift();
    if (u.handler !== undefined) {
      u.handler(req, res);
      return;
    }
    req.resume();
    req.on('end', () => {
      res.writeHead(u.status, { 'content-type': 'text/plain', 'x-upstream': id });
      res.end(id);
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(u, {
    server,
    port: (server.address() as { port: number }).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  });
}

/** The self-test's answer on a runtime whose parser failed it: the gateway falls back. */
export const HTTP1_REFUSED: NativeHttp1Support = Object.freeze({
  server: 'refused by the test',
  agent: 'refused by the test',
});

/**
 * The two HTTP/1 implementations a gateway suite runs on: the gateway's own server and client
 * (the default), and the fallback it takes when node's parser fails the self-test (node:http
 * downstream, undici upstream). Pass `deps` to startTestGateway.
 */
export const HTTP1_IMPLEMENTATIONS: readonly {
  readonly name: string;
  readonly deps: GatewayDeps;
}[] = [
  { name: 'its own HTTP/1 server and client', deps: {} },
  { name: 'the HTTP/1 fallback (node:http, undici)', deps: { nativeHttp1: HTTP1_REFUSED } },
];

/**
 * Declares a gateway suite once per HTTP/1 implementation (HTTP1_IMPLEMENTATIONS), titled
 * `<title> on <implementation>`; `body` passes `http1.deps` to startTestGateway.
 */
export function describeOnEachHttp1(
  title: string,
  body: (http1: (typeof HTTP1_IMPLEMENTATIONS)[number]) => void,
): void {
  for (const http1 of HTTP1_IMPLEMENTATIONS)
    describe(`${title} on ${http1.name}`, () => body(http1));
}

/** A gateway on 127.0.0.1:0 (proxy and admin) against `registry`, with `config` on top. */
export async function startTestGateway(
  registry: string,
  config: Record<string, unknown> = {},
  deps: GatewayDeps = {},
): Promise<RunningGateway> {
  const options = resolveGatewayOptions({
    flags: {
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      registry: [registry],
      logLevel: 'silent',
      ...config,
    },
  });
  return startGateway(options, silentLogger, deps);
}

/** A GET (or other) through the gateway; answers status, headers and the body text. */
export async function call(
  base: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}> {
  const res = await request(base + path, {
    method: (opts.method ?? 'GET') as 'GET',
    headers: opts.headers ?? {},
    ...(opts.body === undefined ? {} : { body: opts.body }),
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** Polls `condition` every 10 ms until it holds or `timeoutMs` passes (then throws). */
export async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<void> {
  await pollUntil(condition, timeoutMs, what, 10);
}
