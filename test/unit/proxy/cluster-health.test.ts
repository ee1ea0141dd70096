/**
 * The cluster health a proxy reports (issue 21): clusterHealth read from real clusters (outlier
 * ejections, panic mode), and the EdgeReporter sending it with its reports, at once (within its
 * check interval) when it changes, again each interval while there is something to say, and
 * again after a send failed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../../src/core/logger.js';
import { Cluster } from '../../../src/proxy/cluster.js';
import { clusterHealth } from '../../../src/proxy/cluster-health.js';
import { EdgeCounter } from '../../../src/proxy/edge-counts.js';
import { EdgeReporter } from '../../../src/proxy/edge-reporter.js';
import type { ProxyEdgeReport } from '../../../src/protocol/mesh/graph.js';
import { FakeClock, flushMicrotasks } from '../../../src/testing/fake-clock.js';
import { fakeInstance } from '../../../src/testing/fake-mesh-catalog.js';

/** A cluster of `n` passing instances `<service>-<i>` at 10.0.0.<i>:8080; ejects at 2 failures. */
function cluster(clock: FakeClock, service: string, n: number, panicThresholdPercent = 50) {
  const c = new Cluster({
    service,
    balancer: 'round-robin',
    outlierDetection: { consecutiveFailures: 2, baseEjectionMs: 30_000, maxEjectedPercent: 100 },
    panicThresholdPercent,
    clock,
  });
  c.update(
    Array.from({ length: n }, (_, i) =>
      fakeInstance(`${service}-${i}`, service, { address: `10.0.0.${i}` }),
    ),
  );
  return c;
}

const eject = (c: Cluster, id: string): void => {
  c.outliers.report(id, false);
  c.outliers.report(id, false);
};

describe('clusterHealth', () => {
  it('lists only clusters with ejections or in panic, with the ejected instances and counts', () => {
    const clock = new FakeClock();
    const quiet = cluster(clock, 'users', 2);
    const payments = cluster(clock, 'payments', 4);
    assert.deepEqual(clusterHealth([quiet, payments]), []);
    eject(payments, 'payments-2');
    assert.deepEqual(clusterHealth([quiet, payments]), [
      {
        cluster: 'payments',
        service: 'payments',
        endpoints: 4,
        available: 3,
        panic: false,
        ejected: [{ id: 'payments-2', address: '10.0.0.2:8080' }],
        ejectedCount: 1,
      },
    ]);
    // Three of four ejected: 25% available is under the 50% threshold, panic.
    eject(payments, 'payments-0');
    eject(payments, 'payments-1');
    const [h] = clusterHealth([payments]);
    assert.equal(h?.panic, true);
    assert.equal(h?.available, 1);
    assert.deepEqual(
      h?.ejected.map((e) => e.id),
      ['payments-0', 'payments-1', 'payments-2'],
    );
    // The ejection ends after its time: back to nothing to say once probes succeed.
    clock.advance(30_000);
    for (const id of ['payments-0', 'payments-1', 'payments-2']) {
      for (let i = 0; i < payments.outliers.options.halfOpenProbes; i++) {
        assert.ok(payments.outliers.allow(id));
        payments.outliers.report(id, true);
      }
    }
    assert.deepEqual(clusterHealth([payments]), []);
  });
});

describe('EdgeReporter with health', () => {
  it('sends a health change within its check interval, refreshes it every interval, and clears it', async () => {
    const clock = new FakeClock();
    const payments = cluster(clock, 'payments', 3);
    const sent: ProxyEdgeReport[] = [];
    let fail = false;
    const counter = new EdgeCounter();
    const reporter = new EdgeReporter({
      proxy: 'orders-1',
      sides: [{ reporter: 'source', counter }],
      send: async (r) => {
        if (fail) throw new Error('agent away');
        sent.push(r);
      },
      health: () => clusterHealth([payments]),
      healthCheckIntervalMs: 1_000,
      intervalMs: 10_000,
      clock,
      logger: silentLogger,
    });
    reporter.start();
    clock.advance(10_000);
    await flushMicrotasks();
    assert.equal(sent.length, 0, 'nothing counted, nothing to say: nothing sent');

    eject(payments, 'payments-1');
    clock.advance(1_000);
    await flushMicrotasks();
    assert.equal(sent.length, 1, 'the ejection went within a second');
    assert.deepEqual(sent[0]?.edges, [], 'a report with the health alone');
    assert.deepEqual(
      sent[0]?.health?.[0]?.ejected.map((e) => e.id),
      ['payments-1'],
    );
    // Unchanged: no report at the next checks; at the interval, the health goes again with the
    // edges (one report, not two).
    clock.advance(5_000);
    await flushMicrotasks();
    assert.equal(sent.length, 1);
    counter.count('orders', 'payments', false, 1);
    clock.advance(4_000);
    await flushMicrotasks();
    assert.equal(sent.length, 2);
    assert.equal(sent[1]?.edges.length, 1);
    assert.equal(sent[1]?.health?.length, 1);

    // A change whose report fails is sent again at the next check.
    fail = true;
    eject(payments, 'payments-2');
    clock.advance(1_000);
    await flushMicrotasks();
    assert.equal(reporter.failures, 1);
    fail = false;
    clock.advance(1_000);
    await flushMicrotasks();
    assert.equal(sent.length, 3);
    assert.equal(sent[2]?.health?.[0]?.ejectedCount, 2);

    // Ejections over (the detector lets them back half-open after 30 s, which ends the ejection):
    // [] tells the agent there is nothing to say any more, once.
    const before = sent.length;
    clock.advance(30_000);
    await flushMicrotasks();
    for (const id of ['payments-1', 'payments-2'])
      for (let i = 0; i < payments.outliers.options.halfOpenProbes; i++) {
        assert.ok(payments.outliers.allow(id));
        payments.outliers.report(id, true);
      }
    clock.advance(1_000);
    await flushMicrotasks();
    const cleared = sent.slice(before).filter((r) => r.health !== undefined);
    assert.deepEqual(cleared.at(-1)?.health, []);
    const after = sent.length;
    clock.advance(30_000);
    await flushMicrotasks();
    assert.equal(sent.length, after, 'nothing more to say: nothing more sent');
    reporter.close();
  });
});
