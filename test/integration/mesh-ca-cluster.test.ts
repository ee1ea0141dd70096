/**
 * The mesh CA in cluster mode (issue 20): two agents started together on one real etcd make one
 * root between them (first writer wins), sign with it, see each other's rotation, and retire the
 * old root once when both their clocks pass the overlap. The root's key is in etcd (the
 * protection there is etcd's own: docs/security.md), never in a KV answer.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import type { RunningAgent } from '../../src/cli/agent-runtime.js';
import type { CaRootsResponse, LeafSignResponse } from '../../src/protocol/mesh/ca.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { http, startClusterAgent } from '../helpers/agent.js';
import { makeCsr } from '../helpers/ca.js';
import { startEtcd, type EtcdProcess } from '../helpers/etcd.js';
import { until } from '../helpers/until.js';

const PREFIX = '/meshwork-ca-test/';
const HOUR_MS = 3_600_000;

const roots = async (agent: RunningAgent): Promise<CaRootsResponse> =>
  (await http<CaRootsResponse>(agent.url, 'GET', '/api/v1/mesh/ca/roots')).body;

describe('mesh CA on two agents over one etcd', () => {
  let etcd: EtcdProcess;
  let a: RunningAgent;
  let b: RunningAgent;
  const clockA = new FakeClock(Date.now());
  const clockB = new FakeClock(Date.now());
  before(async () => {
    etcd = await startEtcd();
    // Started together: both find no root and race to store theirs.
    [a, b] = await Promise.all([
      startClusterAgent([etcd.endpoint], 'agent-a', PREFIX, {}, { caClock: clockA }),
      startClusterAgent([etcd.endpoint], 'agent-b', PREFIX, {}, { caClock: clockB }),
    ]);
  });
  after(async () => {
    await a.close();
    await b.close();
    await etcd.stop();
  });

  it('agree on one root, and each signs leaves the other bundle verifies', async () => {
    const [ra, rb] = [await roots(a), await roots(b)];
    assert.equal(ra.roots.length, 1);
    assert.deepEqual(ra, rb);
    const root = new X509Certificate(ra.bundlePem);
    for (const agent of [a, b]) {
      const r = await http<LeafSignResponse>(agent.url, 'POST', '/api/v1/mesh/ca/leaf', {
        csr: (await makeCsr()).pem,
        service: 'orders',
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(new X509Certificate(r.body.certPem).verify(root.publicKey), true);
    }
    // Through KV, nothing of it: neither API lists it.
    for (const path of ['/api/v1/kv/?recurse', '/v1/kv/?recurse']) {
      const r = await http(b.url, 'GET', path);
      assert.doesNotMatch(r.text, /PRIVATE KEY|mesh-ca/);
    }
  });

  it('follow a rotation made on the other agent, and retire the old root once', async () => {
    const first = await roots(a);
    const changesOnB: number[] = [];
    const stop = b.ca.onChange(() => changesOnB.push(b.ca.roots().roots.length));
    try {
      const r = await http<CaRootsResponse>(a.url, 'POST', '/api/v1/mesh/ca/rotate', {
        overlap: '1h',
      });
      assert.equal(r.status, 200, r.text);
      await until(
        async () => (await roots(b)).activeRootId === r.body.activeRootId,
        10_000,
        'B following the rotation',
      );
      assert.deepEqual(await roots(b), r.body);
      const leaf = await http<LeafSignResponse>(b.url, 'POST', '/api/v1/mesh/ca/leaf', {
        csr: (await makeCsr()).pem,
        service: 'orders',
      });
      assert.equal(leaf.body.rootId, r.body.activeRootId);

      // Both agents' retirement timers fire; one compare-and-set goes through.
      clockA.advance(HOUR_MS);
      clockB.advance(HOUR_MS);
      for (const agent of [a, b]) {
        await until(
          async () => (await roots(agent)).roots.length === 1,
          10_000,
          'the old root retired',
        );
      }
      const after = await roots(a);
      assert.deepEqual(
        after.roots.map((x) => x.id),
        [r.body.activeRootId],
      );
      assert.notEqual(after.activeRootId, first.activeRootId);
      assert.deepEqual(changesOnB, [2, 1]);

      // etcd counts the puts of the state: the first root, the rotation, one retirement.
      const client = new Etcd3({ hosts: etcd.endpoint });
      try {
        const res = await client.get(`${PREFIX}k/\u0000mesh-ca/state`).exec();
        assert.equal(res.kvs.length, 1);
        assert.equal(res.kvs[0]?.version, '3');
      } finally {
        client.close();
      }
    } finally {
      stop();
    }
  });
});
