/** ProxyBook: what was sent to each proxy and what it answered, and the state derived from it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry as PromRegistry } from 'prom-client';
import { ProxyBook, syncState } from '../../../../src/control-plane/push/proxy-book.js';
import { PushMetrics } from '../../../../src/control-plane/push/push-metrics.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';
import { ejectedHealth } from '../../../helpers/proxy-health.js';

const proxy = { id: 'p', kind: 'sidecar', name: 'orders', namespace: 'default' } as const;

function book(): { book: ProxyBook; clock: FakeClock; metrics: PromRegistry } {
  const metrics = new PromRegistry();
  const clock = new FakeClock();
  return { book: new ProxyBook('node-a', clock, new PushMetrics(metrics)), clock, metrics };
}

describe('syncState', () => {
  it('is SYNCED when the version sent is ACKed, NACKED when it was refused, else STALE', () => {
    assert.equal(syncState('v2', 'v2', undefined), 'SYNCED');
    assert.equal(syncState('v2', 'v1', 'v2'), 'NACKED');
    assert.equal(syncState('v3', 'v1', 'v2'), 'STALE');
    assert.equal(syncState('v2', 'v1', undefined), 'STALE');
    assert.equal(syncState(undefined, undefined, undefined), 'STALE');
  });
});

describe('ProxyBook', () => {
  it('ends the older connection of an id that connects again, and forgets only its own', () => {
    const { book: b } = book();
    const ended: string[] = [];
    const first = { end: () => ended.push('first') };
    const second = { end: () => ended.push('second') };
    b.connect(proxy, first, undefined);
    b.connect(proxy, second, 'v1');
    assert.deepEqual(ended, ['first']);
    b.disconnect('p', first);
    assert.equal(b.size, 1);
    assert.equal(b.list()[0]?.state, 'SYNCED');
    b.disconnect('p', second);
    assert.equal(b.size, 0);
  });

  it('times push to ACK on the injected clock, once per version', async () => {
    const { book: b, clock, metrics } = book();
    b.connect(proxy, { end: () => undefined }, undefined);
    b.sent('p', 'v1');
    clock.advance(40);
    b.answer({ id: 'p', version: 'v1' });
    b.answer({ id: 'p', version: 'v1' });
    const text = await metrics.metrics();
    assert.match(text, /meshwork_mesh_push_ack_seconds_bucket\{le="0.05"\} 1/);
    assert.match(text, /meshwork_mesh_push_ack_seconds_count 1/);
    assert.match(text, /meshwork_mesh_acks_total\{result="ack"\} 2/);
  });

  it('keeps the last good version through a NACK, and shows the NACK only while it is current', () => {
    const { book: b } = book();
    b.connect(proxy, { end: () => undefined }, undefined);
    b.sent('p', 'v1');
    b.answer({ id: 'p', version: 'v1' });
    b.sent('p', 'v2');
    b.answer({ id: 'p', version: 'v2', error: 'bad regex' });
    assert.deepEqual(
      (({ sent, acked, state, error, nackedVersion }) => ({
        sent,
        acked,
        state,
        error,
        nackedVersion,
      }))(b.list()[0] ?? assert.fail('listed')),
      { sent: 'v2', acked: 'v1', state: 'NACKED', error: 'bad regex', nackedVersion: 'v2' },
    );
    b.sent('p', 'v3');
    assert.equal(b.list()[0]?.state, 'STALE');
    assert.equal(b.list()[0]?.error, undefined);
    assert.throws(() => b.answer({ id: 'q', version: 'v1' }), {
      code: 'MESHWORK_ERR_MESH_PROXY_NOT_CONNECTED',
    });
  });

  it('wakes a blocking read when what it lists changes, or when its wait runs out', async () => {
    // The dashboard's live proxy list (GET /api/v1/mesh/proxies?index=N&wait=, issue 21).
    const { book: b, clock } = book();
    const start = b.revision;
    assert.ok(start > 0);
    const woken: string[] = [];
    const connected = b.changed(start, 30_000).then(() => woken.push('connect'));
    b.connect(proxy, { end: () => undefined }, undefined);
    await connected;
    assert.ok(b.revision > start);
    // Past revisions answer at once.
    await b.changed(start, 30_000);
    let r = b.revision;
    const sent = b.changed(r, 30_000).then(() => woken.push('sent'));
    b.sent('p', 'v1');
    await sent;
    r = b.revision;
    const nacked = b.changed(r, 30_000).then(() => woken.push('nack'));
    b.answer({ id: 'p', version: 'v1', error: 'bad regex' });
    await nacked;
    r = b.revision;
    const idle = b.changed(r, 30_000).then(() => woken.push('timeout'));
    clock.advance(29_999);
    await Promise.resolve();
    assert.deepEqual(woken, ['connect', 'sent', 'nack']);
    clock.advance(1);
    await idle;
    assert.equal(b.revision, r, 'a timeout changes nothing');
    r = b.revision;
    const gone = b.changed(r, 30_000).then(() => woken.push('disconnect'));
    b.endAll();
    await gone;
    assert.deepEqual(woken, ['connect', 'sent', 'nack', 'timeout', 'disconnect']);
  });

  it('keeps the health a connected proxy reports, waking readers only on a change, and forgets it with the proxy', () => {
    const { book: b, clock } = book();
    const health = [ejectedHealth('payments', 3, [{ id: 'payments-1', address: '10.0.0.1:80' }])];
    assert.equal(b.reportHealth('p', health), false, 'no stream here: not kept');
    const first = { end: () => undefined };
    b.connect(proxy, first, undefined);
    clock.advance(1_000);
    let r = b.revision;
    assert.equal(b.reportHealth('p', health), true);
    assert.ok(b.revision > r);
    assert.deepEqual(b.list()[0]?.health, health);
    const since = b.list()[0]?.healthSince;
    assert.equal(since, clock.now());
    // The same health again (the periodic refresh): nothing changes, nobody wakes.
    r = b.revision;
    clock.advance(10_000);
    b.reportHealth('p', JSON.parse(JSON.stringify(health)));
    assert.equal(b.revision, r);
    assert.equal(b.list()[0]?.healthSince, since);
    // A reconnect keeps it; [] clears it.
    b.connect(proxy, { end: () => undefined }, undefined);
    assert.deepEqual(b.list()[0]?.health, health);
    b.reportHealth('p', []);
    assert.equal(b.list()[0]?.health, undefined);
    assert.equal(b.list()[0]?.healthSince, undefined);
    b.reportHealth('p', health);
    b.endAll();
    b.connect(proxy, first, undefined);
    assert.equal(b.list()[0]?.health, undefined, 'gone with the proxy');
  });
});
