import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Dispatcher } from 'undici';
import { Cluster, newPolicyCounts } from '../../../../src/proxy/cluster.js';
import { RouteMirror } from '../../../../src/proxy/filters/mirror/route-mirror.js';
import type { UpstreamHandler } from '../../../../src/proxy/upstream-dispatcher.js';
import { seededRandom } from '../../../helpers/seeded-random.js';
import type { InstanceDto } from '../../../../src/protocol/api-types.js';

function shadowCluster(loaded = true): Cluster {
  const counts = newPolicyCounts();
  const c = new Cluster({
    name: 'shadow',
    service: 'shadow',
    balancer: 'round-robin',
    outlierDetection: {},
    panicThresholdPercent: 0,
    counts,
  });
  if (loaded)
    c.update([
      {
        id: 's-1',
        service: 'shadow',
        address: '127.0.0.1',
        port: 9100,
        status: 'passing',
        tags: [],
        meta: {},
        weights: { passing: 1, warning: 1 },
      } as unknown as InstanceDto,
    ]);
  return c;
}

describe('route mirror', () => {
  it('picks about percent % of requests', () => {
    const m = new RouteMirror(shadowCluster(), 30, {
      random: seededRandom(3),
      timeoutMs: 1000,
      counts: newPolicyCounts(),
    });
    let picked = 0;
    for (let i = 0; i < 2000; i++) if (m.pick()) picked++;
    assert.ok(Math.abs(picked / 2000 - 0.3) < 0.03, `picked ${picked}`);
  });

  it('sends a copy with Host set to the service and -shadow, and counts its outcome', () => {
    const cluster = shadowCluster();
    const m = new RouteMirror(cluster, 100, { timeoutMs: 1000, counts: cluster.counts });
    const sent: { opts: Dispatcher.DispatchOptions; handler: UpstreamHandler }[] = [];
    const dispatcher = {
      dispatch: (opts: Dispatcher.DispatchOptions, handler: UpstreamHandler) => {
        sent.push({ opts, handler });
        return true;
      },
    };
    const headers = ['Host', 'shop.example.com', 'x-a', '1'];
    m.send(dispatcher, 'GET', '/p?q=1', headers);
    assert.deepEqual(headers, ['Host', 'shop.example.com', 'x-a', '1']);
    const [first] = sent;
    assert.deepEqual(first?.opts.headers, ['Host', 'shadow-shadow', 'x-a', '1']);
    assert.equal(first?.opts.origin, 'http://127.0.0.1:9100');
    assert.equal(first?.opts.path, '/p?q=1');
    assert.equal(first?.opts.headersTimeout, 1000);
    first?.handler.onComplete(null);
    m.send(dispatcher, 'GET', '/', headers);
    sent[1]?.handler.onError(new Error('reset'));
    assert.equal(cluster.counts.mirrorSent, 1);
    assert.equal(cluster.counts.mirrorFailed, 1);
  });

  it('counts a failure, never throws, when the dispatcher throws or the cluster is empty', () => {
    const cluster = shadowCluster();
    const m = new RouteMirror(cluster, 100, { timeoutMs: 1000, counts: cluster.counts });
    m.send(
      {
        dispatch: () => {
          throw new Error('closed');
        },
      },
      'GET',
      '/',
      [],
    );
    const empty = shadowCluster(false);
    new RouteMirror(empty, 100, { timeoutMs: 1000, counts: empty.counts }).send(
      { dispatch: () => assert.fail('no endpoint: nothing sent') },
      'GET',
      '/',
      [],
    );
    assert.equal(cluster.counts.mirrorFailed, 1);
    assert.equal(empty.counts.mirrorFailed, 1);
  });
});
