/**
 * @module The two parts of undici the SDK uses, `Agent` and `request`, loaded from their own
 * files instead of undici's index: the index also loads fetch, WebSocket, EventSource, the HTTP
 * cache, the mocks and every interceptor (112 files instead of 31), which cost a sidecar ~4 MB of
 * heap and ~9 MB of RSS it never uses (docs/benchmarks.md, "Sidecar memory"). The classes are
 * undici's own: the index, when something else loads it, hands out the same ones. Those files are
 * undici's layout, not its public entry: they are checked at load, and where they are missing or
 * changed the index serves (`undiciParts.fallback` says why; the sidecar logs a warning and sets
 * `meshwork_sidecar_memory_fallback{part="undici"}`).
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

type DispatcherRequest = (
  this: Undici.Dispatcher,
  options: Undici.Dispatcher.RequestOptions,
) => Promise<Undici.Dispatcher.ResponseData>;

/** The parts, and why they came from undici's index rather than their own files, if they did. */
export interface UndiciParts {
  readonly Agent: typeof Undici.Agent;
  readonly dispatcherRequest: DispatcherRequest;
  /** Set when the files could not be used: the index served them (more memory, same behaviour). */
  readonly fallback?: string;
}

/**
 * Loads `Agent` and `Dispatcher.prototype.request` from their own files (undici's layout, not its
 * public entry, so checked here: both must be functions, the Agent a dispatcher), else from
 * undici's public index, saying why. `load` is a CommonJS require (a stand-in in tests).
 */
export function loadUndiciParts(load: (id: string) => unknown): UndiciParts {
  try {
    const agent = load('undici/lib/dispatcher/agent.js') as typeof Undici.Agent | undefined;
    const dispatcherRequest = load('undici/lib/api/api-request.js') as DispatcherRequest;
    if (typeof agent !== 'function' || typeof agent.prototype.dispatch !== 'function')
      throw new Error('undici/lib/dispatcher/agent.js does not export a dispatcher class');
    if (typeof dispatcherRequest !== 'function')
      throw new Error('undici/lib/api/api-request.js does not export a function');
    return { Agent: agent, dispatcherRequest };
  } catch (err) {
    const index = load('undici') as typeof Undici;
    return {
      Agent: index.Agent,
      dispatcherRequest: index.Dispatcher.prototype.request as DispatcherRequest,
      fallback: (err as Error).message,
    };
  }
}

/** What this process loaded (a sidecar reports `fallback` with a warning and a metric). */
export const undiciParts: UndiciParts = loadUndiciParts(createRequire(import.meta.url));

/** undici's `Agent` (a pool per origin). */
export const Agent = undiciParts.Agent;
export type Agent = Undici.Agent;
const dispatcherRequest = undiciParts.dispatcherRequest;

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
