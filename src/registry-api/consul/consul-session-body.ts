/**
 * @module The body of Consul's /v1/session/create: fields matched as Go matches them, `LockDelay`
 * as Consul reads it (a duration string, or a number: nanoseconds, or seconds below 1000), `TTL`
 * within Consul's bounds, `Behavior`. Messages are Consul's.
 */
import { parseDurationMs } from '../../core/duration.js';
import type { SessionBehavior } from '../../core/types.js';
import type { BodySpec, NormalisedBody } from './consul-body.js';
import { refuse } from './consul-refuse.js';

/** PUT /v1/session/create (python-consul sends lowercase keys; node-consul PascalCase). */
export const SESSION_CREATE_SPEC: BodySpec = {
  fields: {
    Name: 'string',
    Node: 'string',
    Checks: 'strings',
    NodeChecks: 'strings',
    ServiceChecks: { array: { fields: { ID: 'string', Namespace: 'string' } } },
    LockDelay: 'any',
    Behavior: 'string',
    TTL: 'string',
  },
};

/** Consul's default lock delay. */
export const DEFAULT_LOCK_DELAY_MS = 15_000;
/** Consul's longest lock delay (`structs.MaxLockDelay`): longer ones are cut to it. */
export const MAX_LOCK_DELAY_MS = 60_000;
/** Consul's bounds on a session TTL (`session_ttl_min` default, `structs.SessionTTLMax`). */
export const SESSION_TTL_MIN_MS = 10_000;
export const SESSION_TTL_MAX_MS = 86_400_000;

/** A JSON number below this is seconds, not nanoseconds (Consul's `lockDelayMinThreshold`). */
const LOCK_DELAY_SECONDS_BELOW = 1000;

/** What a create body asks for, checks still as Consul names them. */
export interface SessionCreateRequest {
  readonly name: string;
  readonly node: string | undefined;
  readonly lockDelayMs: number;
  readonly behavior: SessionBehavior;
  readonly ttlMs: number;
  /** Node check ids (`Checks` and `NodeChecks`); undefined when the body names no checks. */
  readonly nodeChecks: readonly string[] | undefined;
  readonly serviceChecks: readonly string[];
}

/**
 * Reads a normalised create body. Throws Consul's refusals (400): an unknown `Behavior`, a `TTL`
 * that is no duration or outside 10s..24h, a `LockDelay` that is no duration.
 * @example
 * parseSessionCreate({ TTL: '15s', Behavior: 'delete' }).ttlMs // 15000
 */
export function parseSessionCreate(body: NormalisedBody): SessionCreateRequest {
  const behavior = (body.Behavior as string | undefined) || 'release';
  if (behavior !== 'release' && behavior !== 'delete')
    throw refuse(`Invalid Behavior setting '${behavior}'`);
  const checks = body.Checks as string[] | undefined;
  const nodeChecks = body.NodeChecks as string[] | undefined;
  const serviceChecks = ((body.ServiceChecks as NormalisedBody[] | undefined) ?? []).map((c, i) => {
    const id = c.ID as string | undefined;
    if (id === undefined || id === '') throw refuse(`ServiceChecks[${i}].ID: must be given`);
    return id;
  });
  const named = checks !== undefined || nodeChecks !== undefined || serviceChecks.length > 0;
  return {
    name: (body.Name as string | undefined) ?? '',
    node: (body.Node as string | undefined) || undefined,
    lockDelayMs: parseLockDelay(body.LockDelay),
    behavior,
    ttlMs: parseSessionTtl((body.TTL as string | undefined) ?? ''),
    nodeChecks: named ? [...new Set([...(checks ?? []), ...(nodeChecks ?? [])])] : undefined,
    serviceChecks,
  };
}

/**
 * A Go duration string as time.ParseDuration reads it: no bare number and no surrounding spaces
 * (parseDurationMs takes both; a fuzzed `"0 "` passed as 0 ms).
 */
function goDurationMs(text: string): number | undefined {
  return text !== text.trim() || /^\d+(\.\d+)?$/.test(text) ? undefined : parseDurationMs(text);
}

/**
 * `LockDelay` as Consul reads it: a Go duration string, or a number of nanoseconds, where a
 * number below 1000 means seconds (so `15` is 15 s). Absent: 15 s. Cut to 60 s. Whole ms.
 */
export function parseLockDelay(value: unknown): number {
  let ms: number | undefined;
  if (value === undefined) return DEFAULT_LOCK_DELAY_MS;
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0)
      ms = value < LOCK_DELAY_SECONDS_BELOW ? value * 1000 : value / 1e6;
  } else if (typeof value === 'string') {
    ms = value === '' ? 0 : goDurationMs(value);
  }
  if (ms === undefined)
    throw refuse(
      `Request decode failed: LockDelay: must be a duration like "15s" or a number of nanoseconds`,
    );
  return Math.min(Math.ceil(ms), MAX_LOCK_DELAY_MS);
}

/** `TTL`: "" or "0s" for none, else a Go duration within Consul's bounds. Whole ms. */
export function parseSessionTtl(text: string): number {
  if (text === '') return 0;
  const ms = text === '0' ? 0 : goDurationMs(text);
  if (ms === undefined)
    throw refuse(`Session TTL '${text}' invalid: time: invalid duration "${text}"`);
  if (ms !== 0 && (ms < SESSION_TTL_MIN_MS || ms > SESSION_TTL_MAX_MS))
    throw refuse(
      `Invalid Session TTL '${ms * 1e6}', must be between [${SESSION_TTL_MIN_MS / 1000}s=24h0m0s]`,
    );
  return ms;
}
