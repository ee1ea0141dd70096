/**
 * @module The two parts of undici the SDK uses, `Agent` and `request`, loaded from their own
 * files instead of undici's index: the index also loads fetch, WebSocket, EventSource, the HTTP
 * cache, the mocks and every interceptor (112 files instead of 31), which cost a sidecar ~4 MB of
 * heap and ~9 MB of RSS it never uses (docs/benchmarks.md, "Sidecar memory"). The classes are
 * undici's own: the index, when something else loads it, hands out the same ones.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const load = createRequire(import.meta.url);

/** undici's `Agent` (a pool per origin). */
export const Agent = load('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export type Agent = Undici.Agent;

// `Dispatcher.prototype.request`, which undici's index attaches to every dispatcher.
const dispatcherRequest = load('undici/lib/api/api-request.js') as (
  this: Undici.Dispatcher,
  options: Undici.Dispatcher.RequestOptions,
) => Promise<Undici.Dispatcher.ResponseData>;

/** Options of {@link request}: undici's, with the dispatcher required (no global one here). */
export type RequestOptions = Omit<
  Undici.Dispatcher.RequestOptions,
  'origin' | 'path' | 'method'
> & {
  readonly dispatcher: Undici.Dispatcher;
  readonly method?: Undici.Dispatcher.HttpMethod;
};

/**
 * undici's `request(url, options)` for an absolute URL and an explicit dispatcher: same
 * defaults (GET, or PUT when there is a body), same response.
 */
export function request(
  url: string,
  options: RequestOptions,
): Promise<Undici.Dispatcher.ResponseData> {
  const u = new URL(url);
  const { dispatcher, ...rest } = options;
  return dispatcherRequest.call(dispatcher, {
    ...rest,
    origin: u.origin,
    path: u.search === '' ? u.pathname : `${u.pathname}${u.search}`,
    method: options.method ?? (options.body === undefined || options.body === null ? 'GET' : 'PUT'),
  });
}
