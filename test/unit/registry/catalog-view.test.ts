/** Unit tests of the CatalogView: node checks. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CatalogView, nodeChecksId } from '../../../src/registry/catalog-view.js';
import { checkDef, instance } from './health/health-fixtures.js';

describe('CatalogView node checks', () => {
  const put = (index: number, i: ReturnType<typeof instance>) =>
    ({ type: 'instance-put', index, createIndex: index, instance: i }) as const;
  const nodeOf = (name: string) =>
    instance([checkDef({ id: 'disk', kind: 'ttl' })], { id: nodeChecksId(name), service: '_node' });

  it('in cluster mode moves every service index but changes no status', () => {
    const view = new CatalogView('n1', { nodeChecksAffectInstances: false });
    view.load({
      index: 1,
      instances: [],
      checkStates: [],
      kv: [],
      meshResources: [],
      sessions: [],
    });
    view.apply([put(2, instance([]))]);
    const other = view.apply([put(3, nodeOf('n2'))]);
    assert.equal(other.nodeChanged, false, "another agent's node is not this one");
    assert.equal(view.serviceIndex('web'), 2);
    const own = view.apply([put(4, nodeOf('n1'))]);
    assert.equal(own.nodeChanged, true);
    assert.deepEqual(own.changes, [], 'no instance changed');
    assert.equal(view.serviceIndex('web'), 4);
    assert.equal(view.catalogIndex, 4);
    assert.equal(view.status('web-1')?.status, 'passing');
    assert.equal(view.nodeChecks()?.checks[0]?.status, 'critical');
  });

  it('loads node checks and their states from a snapshot', () => {
    const view = new CatalogView('n1');
    view.load({
      index: 9,
      instances: [
        { instance: instance([]), createIndex: 2, modifyIndex: 2 },
        { instance: nodeOf('n1'), createIndex: 3, modifyIndex: 5 },
      ],
      checkStates: [
        {
          instanceId: nodeChecksId('n1'),
          checkId: 'disk',
          status: 'warning',
          output: '90%',
          since: 1,
          startedOnce: false,
        },
      ],
      kv: [],
      meshResources: [],
      sessions: [],
    });
    assert.equal(view.status('web-1')?.status, 'warning');
    assert.equal(view.states(nodeChecksId('n1')).length, 1);
    const deleted = view.apply([{ type: 'instance-delete', index: 10, id: nodeChecksId('n1') }]);
    assert.deepEqual(deleted.deleted, [nodeChecksId('n1')]);
    assert.equal(view.status('web-1')?.status, 'passing');
  });
});
