/** @module ConsulRouter: the /v1 route table (handlers by path and method, 405 with Allow, OPTIONS). */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { refuse } from './consul-refuse.js';
import { fromBrowser } from './consul-query.js';

/** An HTTP method the Consul API answers (OPTIONS is answered for every path). */
export type ConsulMethod = 'GET' | 'PUT' | 'POST' | 'DELETE';
const METHODS: readonly ConsulMethod[] = ['GET', 'PUT', 'POST', 'DELETE'];

/** A /v1 route handler; it throws to answer an error (the scope's error handler maps it). */
export type ConsulHandler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/**
 * Collects the /v1 handlers by path and method, then registers them together on a fastify scope,
 * adding 405 with Allow for the other methods and OPTIONS.
 */
export class ConsulRouter {
  /** Handlers by path and method; registered together at the end (see `registerAll`). */
  readonly #table = new Map<
    string,
    { handlers: Partial<Record<ConsulMethod, ConsulHandler>>; legacy: boolean }
  >();

  /**
   * Adds `handler` for `methods` on `path`. `legacy`: the PUT handler also answers GET when
   * legacyVerbs is on (python-consul 0.7), but never to a browser.
   */
  readonly route = (
    methods: readonly ConsulMethod[],
    path: string,
    handler: ConsulHandler,
    legacy = false,
  ): void => {
    const entry = this.#table.get(path) ?? { handlers: {}, legacy: false };
    for (const m of methods) entry.handlers[m] = handler;
    entry.legacy ||= legacy;
    this.#table.set(path, entry);
  };

  /** Registers every path: its handlers, 405 with Allow for the other methods, and OPTIONS. */
  registerAll(scope: FastifyInstance, legacyVerbs: boolean): void {
    for (const [path, { handlers, legacy }] of this.#table) {
      const methods = METHODS.filter((m) => handlers[m] !== undefined);
      const allow = `OPTIONS,${methods.join(',')}`;
      const put = handlers.PUT;
      for (const m of METHODS) {
        let handler = handlers[m];
        if (handler === undefined && m === 'GET' && legacy && legacyVerbs && put) {
          handler = async (req, reply) => {
            if (fromBrowser(req.headers))
              throw refuse(
                'GET on a write endpoint is refused for browser requests (Origin or Sec-Fetch-Site present): use PUT',
                403,
              );
            return put(req, reply);
          };
        }
        scope.route({
          method: m,
          url: path,
          // A 405 needs no ACL rule (acl/request-acl.ts skips it when checking coverage).
          ...(handler === undefined ? { config: { methodNotAllowed: true } } : {}),
          handler:
            handler ??
            (async (_req, reply) =>
              reply
                .status(405)
                .header('allow', allow)
                .header('content-type', 'text/plain; charset=utf-8')
                .send(`method ${m} not allowed`)),
        });
      }
      scope.route({
        method: 'OPTIONS',
        url: path,
        handler: async (_req, reply) => reply.status(200).header('allow', allow).send(),
      });
    }
  }
}
