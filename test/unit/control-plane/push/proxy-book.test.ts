/** ProxyBook: what was sent to each proxy and what it answered, and the state derived from it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry as PromRegistry } from 'prom-client';
import { ProxyBook, syncState } from '../../../../src/control-plane/push/proxy-book.js';
import { PushMetrics } from '../../../../src/control-plane/push/push-metrics.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';

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
});
