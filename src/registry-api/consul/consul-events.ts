/**
 * @module Consul user events kept in the store (reserved keys), so every agent of a cluster
 * lists the events fired through any of them: the last 256, as Consul's agents keep. Consul
 * gossips them instead; what differs is in docs/consul-compatibility.md ("Events").
 */
import { randomBytes } from 'node:crypto';
import { errors } from '../../core/errors.js';
import { RESERVED_KV_PREFIX, type ReservedKv } from '../../registry/reserved-kv-contract.js';
import { refuse } from './consul-refuse.js';

/** Consul's agents keep this many recent events (agent.eventBuf). */
export const CONSUL_EVENT_BUFFER = 256;
/** Serf's default UserEventSizeLimit: an event (ID, name, filters, payload) fits in this. */
export const CONSUL_EVENT_SIZE_LIMIT = 512;
/** Bytes an event's ID, version and encoding take beside name, filters and payload. */
const EVENT_OVERHEAD_BYTES = 48;
/** Longest filter regex taken (they run against every listed event, on every list). */
const MAX_FILTER_LENGTH = 256;

const PREFIX = `${RESERVED_KV_PREFIX}consul-events/`;
const LTIME_KEY = `${PREFIX}ltime`;
const EVENT_PREFIX = `${PREFIX}e/`;

/** A user event as Consul's API shows it. */
export interface ConsulUserEvent {
  readonly ID: string;
  readonly Name: string;
  /** Base64, or null without a payload. */
  readonly Payload: string | null;
  readonly NodeFilter: string;
  readonly ServiceFilter: string;
  readonly TagFilter: string;
  readonly Version: 1;
  readonly LTime: number;
}

/** What a fire asks for. */
export interface UserEventRequest {
  readonly name: string;
  readonly payload: Uint8Array;
  readonly nodeFilter: string;
  readonly serviceFilter: string;
  readonly tagFilter: string;
}

/** What an agent is, for the filters of the events it lists. */
export interface EventTarget {
  readonly nodeName: string;
  /** This agent's services, each with its tags. */
  services(): Iterable<{ readonly name: string; readonly tags: readonly string[] }>;
}

/**
 * Validates a fire as Consul's validateUserEventParams does (its messages), plus the size limit
 * serf applies. Throws a 400 refusal.
 */
export function validateUserEvent(e: UserEventRequest): void {
  if (e.name === '') throw refuse('Missing name');
  if (e.tagFilter !== '' && e.serviceFilter === '')
    throw refuse('Cannot provide tag filter without service filter');
  for (const [what, f] of [
    ['node', e.nodeFilter],
    ['service', e.serviceFilter],
    ['tag', e.tagFilter],
  ] as const) {
    if (f === '') continue;
    if (f.length > MAX_FILTER_LENGTH)
      throw refuse(`Invalid ${what} filter: longer than ${MAX_FILTER_LENGTH} characters`);
    try {
      new RegExp(f);
    } catch (err) {
      throw refuse(`Invalid ${what} filter: ${(err as Error).message}`);
    }
  }
  const size =
    Buffer.byteLength(e.name) +
    Buffer.byteLength(e.nodeFilter + e.serviceFilter + e.tagFilter) +
    e.payload.byteLength +
    EVENT_OVERHEAD_BYTES;
  if (size > CONSUL_EVENT_SIZE_LIMIT)
    throw refuse(
      `user event exceeds configured limit of ${CONSUL_EVENT_SIZE_LIMIT} bytes before encoding`,
    );
}

/**
 * The index Consul derives from an event ID (agent/event_endpoint.go uuidToUint64): the XOR of
 * the UUID's two 64-bit halves. `consul watch -type event` prunes seen events with it.
 */
export function eventIdToIndex(id: string): bigint {
  const lower = BigInt(`0x${id.slice(0, 8)}${id.slice(9, 13)}${id.slice(14, 18)}`);
  const upper = BigInt(`0x${id.slice(19, 23)}${id.slice(24, 36)}`);
  return lower ^ upper;
}

/**
 * A random UUID-shaped ID whose {@link eventIdToIndex} is `index`: event indexes then grow with
 * the events (Consul's are random), so clients that wait for a greater index work too.
 */
export function eventIdFor(index: number, random: () => Buffer = () => randomBytes(8)): string {
  const upper = BigInt(`0x${random().toString('hex')}`);
  const lower = upper ^ BigInt(index);
  const lo = lower.toString(16).padStart(16, '0');
  const up = upper.toString(16).padStart(16, '0');
  return `${lo.slice(0, 8)}-${lo.slice(8, 12)}-${lo.slice(12, 16)}-${up.slice(0, 4)}-${up.slice(4)}`;
}

/** An event's index: its LTime + 1 (1 is the index of an empty list, as in Consul). */
const indexOfLTime = (ltime: number): number => ltime + 1;

/** Fires and lists user events in the store's reserved keys. */
export class ConsulEvents {
  readonly #kv: ReservedKv;

  constructor(kv: ReservedKv) {
    this.#kv = kv;
  }

  /**
   * Stores a (validated) event at the next LTime, dropping the oldest past 256, in one commit
   * compared on the LTime key (agents firing together take turns). Answers the event.
   */
  async fire(e: UserEventRequest): Promise<ConsulUserEvent> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const clock = this.#kv.get(LTIME_KEY);
      const ltime = (clock === undefined ? 0 : Number(Buffer.from(clock.value).toString())) + 1;
      const event: ConsulUserEvent = {
        ID: eventIdFor(indexOfLTime(ltime)),
        Name: e.name,
        Payload: e.payload.byteLength === 0 ? null : Buffer.from(e.payload).toString('base64'),
        NodeFilter: e.nodeFilter,
        ServiceFilter: e.serviceFilter,
        TagFilter: e.tagFilter,
        Version: 1,
        LTime: ltime,
      };
      const stored = this.#kv.list(EVENT_PREFIX);
      const drop = stored.slice(0, Math.max(0, stored.length - (CONSUL_EVENT_BUFFER - 1)));
      const r = await this.#kv.commit([
        {
          op: 'put',
          key: LTIME_KEY,
          value: Buffer.from(String(ltime)),
          cas: clock?.modifyIndex ?? 0,
        },
        { op: 'put', key: eventKey(ltime), value: Buffer.from(JSON.stringify(event)) },
        ...drop.map((d) => ({ op: 'delete' as const, key: d.key })),
      ]);
      if (r.ok) return event;
    }
    throw errors.storeUnavailable('user event: other agents kept firing events at the same time');
  }

  /**
   * The stored events this agent would have processed (Consul's shouldProcessUserEvent: the node
   * filter matches this node, the service and tag filters one of its services), oldest first,
   * those named `name` only when given.
   */
  list(target: EventTarget, name?: string): ConsulUserEvent[] {
    const out: ConsulUserEvent[] = [];
    for (const entry of this.#kv.list(EVENT_PREFIX)) {
      let event: ConsulUserEvent;
      try {
        event = JSON.parse(Buffer.from(entry.value).toString()) as ConsulUserEvent;
      } catch {
        continue;
      }
      if (name !== undefined && name !== '' && event.Name !== name) continue;
      if (processes(target, event)) out.push(event);
    }
    return out;
  }
}

/** Keys sort as the LTimes do (fixed width). */
function eventKey(ltime: number): string {
  return `${EVENT_PREFIX}${String(ltime).padStart(16, '0')}`;
}

/** The index of a listing: of its last event, 1 when empty (as Consul). */
export function eventListIndex(events: readonly ConsulUserEvent[]): number {
  const last = events.at(-1);
  return last === undefined ? 1 : Number(eventIdToIndex(last.ID));
}

function processes(target: EventTarget, e: ConsulUserEvent): boolean {
  const re = (f: string): RegExp | undefined => {
    try {
      return new RegExp(f);
    } catch {
      return undefined;
    }
  };
  if (e.NodeFilter !== '' && re(e.NodeFilter)?.test(target.nodeName) !== true) return false;
  if (e.ServiceFilter === '') return true;
  const service = re(e.ServiceFilter);
  const tag = e.TagFilter === '' ? undefined : re(e.TagFilter);
  if (service === undefined || (e.TagFilter !== '' && tag === undefined)) return false;
  for (const s of target.services()) {
    if (!service.test(s.name)) continue;
    if (tag === undefined || s.tags.some((t) => tag.test(t))) return true;
  }
  return false;
}
