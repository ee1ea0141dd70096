/**
 * @module The upstream client contract of the proxy engine: undici's `dispatch` with its raw
 * handler methods (an undici Agent, or the gateway's Http1Agent). Its own file so that a
 * cluster may carry one (contract.ts re-exports both types).
 */
import type { Dispatcher } from 'undici';

/**
 * What the engine needs of its upstream client: undici's `dispatch` with its raw handler methods
 * (an undici Agent, or the gateway's Http1Agent). `dispatch` is called once per attempt; it MAY
 * throw synchronously (the attempt then fails as if onError had been called) and MUST otherwise
 * end every dispatch with exactly one of `onComplete` or `onError`.
 */
export interface UpstreamDispatcher {
  dispatch(options: Dispatcher.DispatchOptions, handler: UpstreamHandler): boolean;
}

/**
 * undici's raw handler methods, as the engine's attempts implement them. Header names and values
 * come as Buffers from undici and as latin1 strings from Http1Agent; the engine takes either.
 * The dispatcher calls `onConnect` first, then `onHeaders` at most once, `onData` per body
 * chunk (false: pause until the `resume` given with the head is called), and one of
 * `onComplete` or `onError` last. None of them throws.
 */
export interface UpstreamHandler {
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(
    statusCode: number,
    rawHeaders: readonly (Buffer | string)[],
    resume: () => void,
    statusText: string,
  ): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(trailers: readonly (Buffer | string)[] | null): void;
  onError(err: Error): void;
}
