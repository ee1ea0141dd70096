/**
 * @module Fault injection (Istio's VirtualService `fault`): hold `delay.percent` % of a route's
 * requests `delay.ms` ms, and answer `abort.percent` % with `abort.status` and a JSON error body
 * (MESHWORK_ERR_PROXY_FAULT_ABORT) without asking an upstream. Both are drawn from the injected
 * random per request, independently (a request may be delayed, then aborted, as in Envoy).
 */
import { errors } from '../../../core/errors.js';
import type { Filter, FilterStatus, LocalReply } from '../../filter.js';

export interface FaultOptions {
  readonly delay?: { readonly ms: number; readonly percent: number } | undefined;
  readonly abort?: { readonly status: number; readonly percent: number } | undefined;
}

/** The problems of fault options, each naming its field under `field`. */
export function faultProblems(o: FaultOptions, field: string): string[] {
  const problems: string[] = [];
  const percent = (v: number, f: string): void => {
    if (!(Number.isFinite(v) && v >= 0 && v <= 100)) problems.push(`${f}: must be 0..100`);
  };
  if (o.delay !== undefined) {
    percent(o.delay.percent, `${field}.delay.percent`);
    if (!(Number.isInteger(o.delay.ms) && o.delay.ms >= 0 && o.delay.ms <= 3_600_000))
      problems.push(`${field}.delay.ms: must be a whole number of ms, 0..3600000`);
  }
  if (o.abort !== undefined) {
    percent(o.abort.percent, `${field}.abort.percent`);
    if (!(Number.isInteger(o.abort.status) && o.abort.status >= 200 && o.abort.status <= 599))
      problems.push(`${field}.abort.status: must be an HTTP status 200..599`);
  }
  return problems;
}

/** The abort reply: the route's status, the engine's error shape. */
function abortReply(status: number): LocalReply {
  const err = errors.proxyFaultAbort(status);
  return { status, body: { error: { code: err.code, message: err.message, ...err.details } } };
}

/**
 * The fault filter of a route, or undefined when it injects nothing. `options` MUST have passed
 * faultProblems. `random` answers in [0, 1).
 */
export function createFaultFilter(
  options: FaultOptions,
  random: () => number = Math.random,
): Filter | undefined {
  const delay =
    options.delay !== undefined && options.delay.percent > 0 ? options.delay : undefined;
  const abort =
    options.abort !== undefined && options.abort.percent > 0 ? options.abort : undefined;
  if (delay === undefined && abort === undefined) return undefined;
  const reply = abort === undefined ? undefined : abortReply(abort.status);
  const delayed =
    delay === undefined
      ? undefined
      : { delayMs: delay.ms, reply: undefined as LocalReply | undefined };
  const delayedAbort = delay === undefined ? undefined : { delayMs: delay.ms, reply };
  return {
    name: 'fault',
    onRequest(): FilterStatus {
      const hold = delay !== undefined && random() * 100 < delay.percent;
      const cut = abort !== undefined && random() * 100 < abort.percent;
      if (hold) return (cut ? delayedAbort : delayed) as FilterStatus;
      return cut ? (reply as LocalReply) : 'continue';
    },
  };
}
