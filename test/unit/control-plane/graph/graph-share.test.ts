/**
 * GraphShare (issue 21, the call graph in cluster mode) over an in-memory store of reserved keys
 * shared by two agents, on a fake clock: an agent writes its proxies' counts once per interval
 * and only when there are some, the other merges each value once, a value past its expiry is
 * not merged, a failed write keeps its counts for the next, and the keys of agents silent for
 * over an hour are deleted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CallGraph } from '../../../../src/control-plane/graph/call-graph.js';
import {
  GraphShare,
  parseGraphShare,
  type GraphShareEvent,
} from '../../../../src/control-plane/graph/graph-share.js';
import { silentLogger } from '../../../../src/core/logger.js';
import type { KvEntry } from '../../../../src/core/types.js';
import type { ReservedKv } from '../../../../src/registry/reserved-kv.js';
import { FakeClock, flushMicrotasks } from '../../../../src/testing/fake-clock.js';
import { edgeReport } from '../../../helpers/edge-report.js';

const PREFIX = '\u0000call-graph/';
const NODES = { services: [], gateways: [] };

/** Reserved keys in memory: compare-and-set, listeners told synchronously after each write. */
class MemoryKv implements ReservedKv {
  readonly entries = new Map<string, KvEntry>();
  writes = 0;
  failing = false;
  #index = 1;
  readonly #listeners = new Set<{ prefix: string; listener: (keys: readonly string[]) => void }>();

  get(key: string): KvEntry | undefined {
    return this.entries.get(key);
  }
  list(prefix: string): KvEntry[] {
    return [...this.entries.values()].filter((e) => e.key.startsWith(prefix));
  }
  async put(key: string, value: Uint8Array, cas: number) {
    if (this.failing) throw new Error('store away');
    if ((this.entries.get(key)?.modifyIndex ?? 0) !== cas) return { ok: false, index: this.#index };
    const index = ++this.#index;
    this.entries.set(key, { key, value, flags: 0, createIndex: index, modifyIndex: index });
    this.writes++;
    this.#tell(key);
    return { ok: true, index };
  }
  async delete(key: string, cas: number) {
    if (this.entries.get(key)?.modifyIndex !== cas) return { ok: false, index: this.#index };
    this.entries.delete(key);
    this.#tell(key);
    return { ok: true, index: ++this.#index };
  }
  commit(): Promise<{ ok: boolean; index: number }> {
    return Promise.reject(new Error('the graph share writes one key at a time'));
  }
  subscribe(prefix: string, listener: (keys: readonly string[]) => void): () => void {
    const l = { prefix, listener };
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }
  #tell(key: string): void {
    for (const l of this.#listeners) if (key.startsWith(l.prefix)) l.listener([key]);
  }
}

const report = (requests: number) => edgeReport('payments-1', 'orders', 'payments', requests);

function agent(kv: MemoryKv, clock: FakeClock, nodeName: string) {
  const graph = new CallGraph({ clock });
  const events: GraphShareEvent[] = [];
  const share = new GraphShare({
    graph,
    kv,
    prefix: PREFIX,
    nodeName,
    intervalMs: 10_000,
    gateways: () => [],
    count: (e) => events.push(e),
    clock,
    logger: silentLogger,
  });
  const requests = (): number =>
    graph.graph(600, NODES).edges.find((e) => e.source === 'orders')?.requests ?? 0;
  return { graph, share, events, requests };
}

describe('GraphShare', () => {
  it("writes an agent's counts once per interval, only when there are some, and the other merges each once", async () => {
    const kv = new MemoryKv();
    const clock = new FakeClock();
    const a = agent(kv, clock, 'a');
    const b = agent(kv, clock, 'b');
    a.share.start();
    b.share.start();
    clock.advance(10_000);
    await flushMicrotasks();
    assert.equal(kv.writes, 0, 'no traffic: no writes');

    a.graph.record(report(30));
    a.graph.record(report(10));
    clock.advance(10_000);
    await flushMicrotasks();
    assert.equal(kv.writes, 1, 'one write for the interval');
    const value = parseGraphShare(kv.entries.get(`${PREFIX}a`)?.value ?? new Uint8Array());
    assert.equal(value?.edges[0]?.requests, 40);
    assert.equal(value?.expiresAt, clock.now() + 20_000);
    assert.equal(b.requests(), 40);
    assert.equal(a.requests(), 40, 'A is not told its own value');
    // B wrote nothing: merged counts are not shared again.
    clock.advance(10_000);
    await flushMicrotasks();
    assert.equal(kv.writes, 1);
    assert.deepEqual(b.events, ['merged']);
    a.share.close();
    b.share.close();
  });

  it('keeps the counts of a failed write for the next, and does not merge a value past its expiry', async () => {
    const kv = new MemoryKv();
    const clock = new FakeClock();
    const a = agent(kv, clock, 'a');
    a.share.start();
    a.graph.record(report(5));
    kv.failing = true;
    clock.advance(10_000);
    await flushMicrotasks();
    assert.deepEqual(a.events, ['write_failed']);
    kv.failing = false;
    a.graph.record(report(2));
    clock.advance(10_000);
    await flushMicrotasks();
    assert.equal(
      parseGraphShare(kv.entries.get(`${PREFIX}a`)?.value ?? new Uint8Array())?.edges[0]?.requests,
      7,
    );
    a.share.close();
    // An agent that starts 20 s later: A's value has expired, its counts are not "now".
    clock.advance(20_001);
    const late = agent(kv, clock, 'c');
    late.share.start();
    assert.equal(late.requests(), 0);
    assert.deepEqual(late.events, ['stale']);
    // An hour and more of silence from A: its key goes at C's next interval.
    clock.advance(3_600_000);
    await flushMicrotasks();
    clock.advance(10_000);
    await flushMicrotasks();
    assert.equal(kv.entries.has(`${PREFIX}a`), true, 'an hour: kept');
    clock.advance(600_000);
    await flushMicrotasks();
    clock.advance(10_000);
    await flushMicrotasks();
    assert.equal(kv.entries.has(`${PREFIX}a`), false, 'over an hour and ten minutes: deleted');
    late.share.close();
  });
});
