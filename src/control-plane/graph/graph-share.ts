/**
 * @module GraphShare: the call graph across a cluster (issue 21). Each agent aggregates the edge
 * reports of the proxies connected to it; in cluster mode (etcd) it also shares them, so every
 * agent serves the whole mesh's graph:
 *
 * - Every `intervalMs` (the proxies' report interval, 10 s), if its proxies reported calls since
 *   the last time (or its gateways changed), the agent writes what they counted in that interval,
 *   summed per edge (requests, errors and the latency histogram), under its own reserved key
 *   (`<prefix><node name>`): one write per interval per agent, none while there is no traffic.
 * - Every agent follows the other agents' keys; each new value is added to its own graph
 *   (`CallGraph.merge`) once, when it arrives, into the same time buckets as its own proxies'
 *   reports. So rps and errors are summed across agents and the p99 comes from the merged
 *   histograms (exact bucket-wise, as within one agent), over any window.
 * - The value carries `expiresAt` (written + 2 intervals): a value read later than that (an agent
 *   that starts, or whose watch was cut) is not merged, as its counts are no longer "now". A dead
 *   agent writes nothing more, so what it shared ages out of the others' graphs as their own
 *   counts do (gone from a window once the window passes it; forgotten after an hour). Keys of
 *   agents silent for over an hour are deleted (compare-and-set: an agent that came back keeps
 *   its key).
 *
 * Lost counts: a value overwritten before another agent read it (its watch was cut for longer
 * than an interval) is lost to that agent; an agent that starts sees the others' calls from then
 * on (no history).
 */
import { z } from 'zod';
import type { Clock } from '../../core/clock.js';
import { repeatEvery, type Repeating } from '../../core/repeat.js';
import type { Logger } from '../../core/logger.js';
import type { KvEntry } from '../../core/types.js';
import { EDGE_LATENCY_BUCKETS_MS, type EdgeCounts } from '../../protocol/mesh/graph.js';
import { printable } from '../../protocol/registration.js';
import type { ReservedKv } from '../../registry/reserved-kv.js';
import type { CallGraph } from './call-graph.js';
import { edgeSchema } from './edge-report-body.js';

/** An agent's share holds at most this many edges (the call graph's own limit). */
export const MAX_SHARED_EDGES = 4096;
/** A share's value is at most this many bytes (etcd takes 1.5 MiB per request by default). */
export const MAX_SHARE_BYTES = 1_048_576;
/** A key whose agent wrote nothing for this long is deleted by the others. */
const FORGET_AFTER_MS = 3_600_000 + 600_000;
const LATENCY_BUCKETS = EDGE_LATENCY_BUCKETS_MS.length + 1;

/** What one agent writes under its key. */
export interface GraphShareValue {
  readonly agent: string;
  /** ms since the epoch. */
  readonly writtenAt: number;
  /** After this (ms since the epoch) the value is not merged. */
  readonly expiresAt: number;
  /** The time the counts cover, ms (since the agent's previous write, or its start). */
  readonly intervalMs: number;
  /** The gateways connected to the agent (so other agents draw them as gateways). */
  readonly gateways: readonly string[];
  readonly edges: readonly EdgeCounts[];
}

const shareSchema = z
  .object({
    agent: printable(256, 1),
    writtenAt: z.number().int().min(0),
    expiresAt: z.number().int().min(0),
    intervalMs: z.number().int().min(0),
    gateways: z.array(printable(256, 1)).max(10_000),
    edges: z.array(edgeSchema).max(MAX_SHARED_EDGES),
  })
  .strict();

/** Parses a share's bytes, or undefined when they are not one (another version's, damaged). */
export function parseGraphShare(bytes: Uint8Array): GraphShareValue | undefined {
  try {
    const r = shareSchema.safeParse(JSON.parse(Buffer.from(bytes).toString('utf8')));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

export interface GraphShareOptions {
  readonly graph: CallGraph;
  /** The registry's reserved keys (replicated by the cluster's store). */
  readonly kv: ReservedKv;
  /** The reserved prefix of the agents' keys. */
  readonly prefix: string;
  /** This agent's node name: its key is `<prefix><nodeName>`. */
  readonly nodeName: string;
  readonly intervalMs: number;
  /** The gateways connected to this agent now. */
  readonly gateways: () => Iterable<string>;
  /** Counts each event (`written`, `write_failed`, `merged`, `stale`, `invalid`). */
  readonly count?: (event: GraphShareEvent) => void;
  readonly clock: Clock;
  readonly logger: Logger;
}

export type GraphShareEvent = 'written' | 'write_failed' | 'merged' | 'stale' | 'invalid';

/** One edge's counts since the last write (made once per edge, reused). */
interface Pending {
  requests: number;
  errors: number;
  readonly latency: number[];
}

/** What is known of another agent's key. */
interface Peer {
  /** The modifyIndex of its value already taken in. */
  index: number;
  writtenAt: number;
  gateways: readonly string[];
}

export class GraphShare {
  readonly #o: GraphShareOptions;
  readonly #log: Logger;
  readonly #key: string;
  readonly #pending = new Map<string, Pending>();
  readonly #peers = new Map<string, Peer>();
  #sharedGateways = '[]';
  #lastWriteMs: number;
  #writes: Repeating | undefined;
  #unsubscribe: (() => void) | undefined;
  #writing: Promise<void> | undefined;
  #closed = false;

  constructor(options: GraphShareOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'graph-share' });
    this.#key = options.prefix + options.nodeName;
    this.#lastWriteMs = options.clock.now();
    options.graph.onRecorded((edges) => this.#addPending(edges));
  }

  /** Takes in the other agents' current values, follows their keys, and starts writing. */
  start(): void {
    this.#unsubscribe = this.#o.kv.subscribe(this.#o.prefix, (keys) => this.#onKeys(keys));
    this.#onKeys(this.#o.kv.list(this.#o.prefix).map((e) => e.key));
    if (!this.#closed)
      this.#writes = repeatEvery(this.#o.clock, this.#o.intervalMs, () => this.flush());
  }

  /** The gateways other agents shared within the hour (to mark the graph's nodes). */
  otherGateways(): string[] {
    const since = this.#o.clock.now() - 3_600_000;
    const out: string[] = [];
    for (const p of this.#peers.values()) if (p.writtenAt >= since) out.push(...p.gateways);
    return out;
  }

  /** Writes what is pending now (the timer's work; tests call it). Resolves when done. */
  flush(): Promise<void> {
    this.#writing ??= this.#write().finally(() => (this.#writing = undefined));
    return this.#writing;
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribe?.();
    this.#writes?.stop();
  }

  #addPending(edges: readonly EdgeCounts[]): void {
    for (const e of edges) {
      if (e.requests === 0) continue;
      const key = `${e.source}\n${e.destination}`;
      let p = this.#pending.get(key);
      if (p === undefined) {
        if (this.#pending.size >= MAX_SHARED_EDGES) continue;
        p = { requests: 0, errors: 0, latency: new Array<number>(LATENCY_BUCKETS).fill(0) };
        this.#pending.set(key, p);
      }
      p.requests += e.requests;
      p.errors += e.errors;
      for (let i = 0; i < LATENCY_BUCKETS; i++)
        (p.latency[i] as number) += e.latencyBuckets[i] ?? 0;
    }
  }

  async #write(): Promise<void> {
    const now = this.#o.clock.now();
    this.#forgetSilentPeers(now);
    const gateways = [...new Set(this.#o.gateways())].sort();
    const gatewaysKey = JSON.stringify(gateways);
    if (this.#pending.size === 0 && gatewaysKey === this.#sharedGateways) return;
    const edges: EdgeCounts[] = [];
    for (const [key, p] of this.#pending) {
      const nl = key.indexOf('\n');
      edges.push({
        source: key.slice(0, nl),
        destination: key.slice(nl + 1),
        requests: p.requests,
        errors: p.errors,
        latencyBuckets: p.latency,
      });
    }
    this.#pending.clear();
    const value: GraphShareValue = {
      agent: this.#o.nodeName,
      writtenAt: now,
      expiresAt: now + 2 * this.#o.intervalMs,
      intervalMs: Math.max(0, now - this.#lastWriteMs),
      gateways,
      edges: fitting(edges, gateways, now),
    };
    try {
      const bytes = Buffer.from(JSON.stringify(value));
      // Only this agent writes its key: compare-and-set on what it holds now.
      const cas = this.#o.kv.get(this.#key)?.modifyIndex ?? 0;
      const r = await this.#o.kv.put(this.#key, bytes, cas);
      if (!r.ok) throw new Error('the key changed under the write (another agent with this name?)');
      this.#lastWriteMs = now;
      this.#sharedGateways = gatewaysKey;
      this.#o.count?.('written');
    } catch (err) {
      // Kept for the next write: counts are never lost to a store that is briefly away.
      this.#addPending(edges);
      this.#o.count?.('write_failed');
      this.#log.warn({ err, edges: edges.length }, 'call graph share not written');
    }
  }

  #onKeys(keys: readonly string[]): void {
    for (const key of new Set(keys)) {
      if (key === this.#key) continue;
      const entry = this.#o.kv.get(key);
      if (entry === undefined) {
        this.#peers.delete(key);
        continue;
      }
      this.#take(key, entry);
    }
  }

  #take(key: string, entry: KvEntry): void {
    const peer = this.#peers.get(key);
    if (peer !== undefined && entry.modifyIndex <= peer.index) return;
    const value = parseGraphShare(entry.value);
    if (value === undefined) {
      this.#o.count?.('invalid');
      this.#log.warn({ key: key.slice(this.#o.prefix.length) }, 'call graph share not readable');
      // Kept (not deleted) for the hour: it may be the key of an agent of another version.
      this.#peers.set(key, {
        index: entry.modifyIndex,
        writtenAt: this.#o.clock.now(),
        gateways: [],
      });
      return;
    }
    this.#peers.set(key, {
      index: entry.modifyIndex,
      writtenAt: value.writtenAt,
      gateways: value.gateways,
    });
    if (value.expiresAt < this.#o.clock.now()) {
      this.#o.count?.('stale');
      return;
    }
    this.#o.graph.merge(value.edges);
    this.#o.count?.('merged');
  }

  /** Deletes the keys of agents that wrote nothing for over an hour (not if they wrote since). */
  #forgetSilentPeers(now: number): void {
    for (const [key, peer] of this.#peers) {
      if (now - peer.writtenAt < FORGET_AFTER_MS) continue;
      this.#peers.delete(key);
      this.#o.kv.delete(key, peer.index).catch((err: unknown) => {
        this.#log.debug({ err, key: key.slice(this.#o.prefix.length) }, 'old share not deleted');
      });
    }
  }
}

/** `edges` cut (the busiest kept) so the value stays under MAX_SHARE_BYTES. */
function fitting(edges: EdgeCounts[], gateways: readonly string[], now: number): EdgeCounts[] {
  // A generous bound per edge: its names, 16 counts of up to 16 digits, the field names.
  const size = (e: EdgeCounts): number => e.source.length * 3 + e.destination.length * 3 + 400;
  let total = gateways.reduce((n, g) => n + g.length * 3 + 3, 200) + String(now).length;
  for (const e of edges) total += size(e);
  if (total <= MAX_SHARE_BYTES) return edges;
  const kept: EdgeCounts[] = [];
  total = 200;
  for (const e of [...edges].sort((a, b) => b.requests - a.requests)) {
    if (total + size(e) > MAX_SHARE_BYTES) break;
    total += size(e);
    kept.push(e);
  }
  return kept;
}
