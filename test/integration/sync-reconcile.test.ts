/**
 * @module The sync's reconcile loop (issue 24) against a real in-process agent, driven by a
 * scripted RuntimeSource (the Docker source has its own e2e test on a real dockerd).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry as MetricsRegistry } from 'prom-client';
import { createRegistryClient } from '../../src/client/registry-client.js';
import { silentLogger } from '../../src/core/logger.js';
import type { InstanceDto } from '../../src/protocol/api-types.js';
import { Reconciler } from '../../src/sync/reconcile.js';
import type { RuntimeSource, SourceHandlers, Workload } from '../../src/sync/source.js';
import { startTestAgent, useTestAgent } from '../helpers/agent.js';
import { until } from '../helpers/until.js';

/** A source the test drives by hand. */
class ScriptedSource implements RuntimeSource {
  readonly kind = 'scripted';
  handlers: SourceHandlers | undefined;
  start(handlers: SourceHandlers): void {
    this.handlers = handlers;
  }
  async stop(): Promise<void> {
    this.handlers = undefined;
  }
  get h(): SourceHandlers {
    assert.ok(this.handlers, 'started');
    return this.handlers;
  }
}

const workload = (id: string, service = 'web', over: Partial<Workload> = {}): Workload => ({
  id: `${id}-full-container-id`,
  name: id,
  paused: false,
  problems: [],
  registration: { service, id, address: '127.0.0.1', port: 8080, source: 'orchestrator' },
  ...over,
});

async function instances(url: string, service: string): Promise<InstanceDto[]> {
  const r = await fetch(`${url}/api/v1/services/${service}/instances`);
  return r.ok ? ((await r.json()) as { instances: InstanceDto[] }).instances : [];
}

const ids = async (url: string, service: string): Promise<string[]> =>
  (await instances(url, service)).map((i) => i.id).sort();

function loop(addresses: string[], set: string, retryMs = 20) {
  const source = new ScriptedSource();
  const metrics = new MetricsRegistry();
  const client = createRegistryClient({ addresses, timeoutMs: 2_000 });
  const reconciler = new Reconciler({
    source,
    client,
    set,
    logger: silentLogger,
    metrics,
    retryMs,
  });
  reconciler.start();
  return {
    source,
    metrics,
    reconciler,
    close: async () => {
      await reconciler.stop();
      await client.close();
    },
  };
}

describe('Reconciler', () => {
  const agent = useTestAgent();

  it('applies snapshots and changes as its set, and leaves other sets alone', async () => {
    const a = loop([agent().url], 'scripted:a');
    const b = loop([agent().url], 'scripted:b');
    try {
      a.source.h.snapshot([workload('a1', 'mix'), workload('a2', 'mix')]);
      b.source.h.snapshot([workload('b1', 'mix')]);
      await until(async () => (await ids(agent().url, 'mix')).length === 3, 5_000, 'three');
      assert.ok(a.reconciler.synced);
      const a1 = (await instances(agent().url, 'mix')).find((i) => i.id === 'a1');
      assert.equal(a1?.managedBy, 'scripted:a');
      assert.equal(a1?.source, 'orchestrator');
      // A new snapshot of a (a1 gone, a3 new) removes a1 only, never b's.
      a.source.h.snapshot([workload('a2', 'mix'), workload('a3', 'mix')]);
      await until(
        async () => (await ids(agent().url, 'mix')).join() === 'a2,a3,b1',
        5_000,
        'a2,a3,b1',
      );
      b.source.h.remove('b1-full-container-id');
      await until(async () => (await ids(agent().url, 'mix')).join() === 'a2,a3', 5_000, 'b1 gone');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('puts a paused workload in maintenance and takes it out when it runs again', async () => {
    const a = loop([agent().url], 'scripted:pause');
    try {
      a.source.h.snapshot([workload('p1', 'paused')]);
      await until(async () => (await ids(agent().url, 'paused')).length === 1, 5_000, 'one');
      a.source.h.upsert(workload('p1', 'paused', { paused: true }));
      await until(
        async () => (await instances(agent().url, 'paused'))[0]?.status === 'maintenance',
        5_000,
        'maintenance',
      );
      a.source.h.upsert(workload('p1', 'paused'));
      await until(
        async () => (await instances(agent().url, 'paused'))[0]?.maintenance.enabled === false,
        5_000,
        'out of maintenance',
      );
      // A snapshot with it paused (the sync restarted meanwhile) puts it back in.
      a.source.h.snapshot([workload('p1', 'paused', { paused: true })]);
      await until(
        async () => (await instances(agent().url, 'paused'))[0]?.status === 'maintenance',
        5_000,
        'maintenance after a snapshot',
      );
    } finally {
      await a.close();
    }
  });

  it('skips a workload the agent refuses and reports it, registering the others', async () => {
    const a = loop([agent().url], 'scripted:dup');
    try {
      // Two containers claiming the same instance id: the agent refuses the second.
      a.source.h.snapshot([
        workload('d1', 'dup'),
        workload('x', 'dup', { id: 'x-one', name: 'x-one' }),
        workload('x', 'dup', { id: 'x-two', name: 'x-two' }),
      ]);
      await until(async () => (await ids(agent().url, 'dup')).join() === 'd1,x', 5_000, 'd1 and x');
      const text = await a.metrics.metrics();
      assert.match(text, /meshwork_sync_invalid_workloads_total\{source="scripted"\} 1/);
      assert.match(text, /meshwork_sync_instances 2/);
    } finally {
      await a.close();
    }
  });

  it('keeps the desired set while the agent is away and applies it once the agent is back', async () => {
    const other = await startTestAgent();
    const url = other.url;
    const port = new URL(url).port;
    await other.stop();
    const a = loop([url], 'scripted:away');
    let back: Awaited<ReturnType<typeof startTestAgent>> | undefined;
    try {
      a.source.h.snapshot([workload('w1', 'away')]);
      await until(
        async () =>
          /meshwork_sync_applies_total\{result="failed"\} [1-9]/.test(await a.metrics.metrics()),
        5_000,
        'a failed apply',
      );
      assert.equal(a.reconciler.synced, false);
      back = await startTestAgent({ http: `127.0.0.1:${port}` });
      await until(async () => (await ids(url, 'away')).join() === 'w1', 5_000, 'applied once back');
      assert.equal(a.reconciler.synced, true);
    } finally {
      await a.close();
      await back?.stop();
    }
  });
});
