import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MatchInput } from '../../../src/proxy/route-table.js';
import { splitOriginalDestination } from '../../../src/sidecar/original-destination.js';
import { meshSnapshot, snapshotCluster, snapshotRoute } from '../../helpers/mesh-snapshot.js';

const input = (host: string): MatchInput => ({
  method: 'GET',
  host,
  path: '/',
  query: '',
  headers: {},
});
const none = (name: string) =>
  snapshotCluster(name, { endpoints: [], external: { resolution: 'NONE' } });

describe('splitOriginalDestination', () => {
  it('leaves a snapshot without NONE clusters as it is', () => {
    const s = meshSnapshot([snapshotRoute('r')]);
    const split = splitOriginalDestination(s);
    assert.equal(split.routed, s);
    assert.equal(split.passThrough(input('web')), false);
  });

  it('takes out the routes all of whose backends are NONE clusters and passes their hosts', () => {
    const s = meshSnapshot(
      [
        snapshotRoute('ext', {
          hosts: ['*.example.com', 'api.test'],
          backends: [{ cluster: '*.example.com', weight: 100 }],
        }),
        snapshotRoute('web', { hosts: ['web'] }),
      ],
      [snapshotCluster('web'), none('*.example.com')],
    );
    const split = splitOriginalDestination(s);
    assert.deepEqual(
      split.routed.routes.map((r) => r.name),
      ['web'],
    );
    assert.deepEqual(
      split.routed.clusters.map((c) => c.name),
      ['web'],
    );
    assert.deepEqual(split.hosts, ['*.example.com', 'api.test']);
    assert.equal(split.passThrough(input('a.example.com')), true);
    assert.equal(split.passThrough(input('api.test')), true);
    assert.equal(split.passThrough(input('example.com')), false);
    assert.equal(split.passThrough(input('web')), false);
  });

  it('keeps a route mixing NONE and other backends, and the NONE cluster it names (the builder refuses it)', () => {
    const s = meshSnapshot(
      [
        snapshotRoute('mixed', {
          hosts: ['web'],
          backends: [
            { cluster: 'web', weight: 50 },
            { cluster: 'ext', weight: 50 },
          ],
        }),
      ],
      [snapshotCluster('web'), none('ext')],
    );
    const split = splitOriginalDestination(s);
    assert.equal(split.routed.routes.length, 1);
    assert.deepEqual(
      split.routed.clusters.map((c) => c.name),
      ['web', 'ext'],
    );
    assert.deepEqual(split.hosts, []);
  });
});
