/** Instances -> Consul shapes: check ids, hidden markers, maintenance checks, aggregated status. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InstanceDto } from '../../../../src/protocol/api-types.js';
import {
  aggregatedStatus,
  agentService,
  consulCheckId,
  nodeChecks,
  nodeId,
  serviceChecks,
} from '../../../../src/registry-api/consul/consul-shapes.js';

const node = { nodeName: 'n1', datacenter: 'dc1', address: '127.0.0.1' };
const dto = (over: Partial<InstanceDto> = {}): InstanceDto =>
  ({
    id: 'web-1',
    service: 'web',
    address: '10.0.0.1',
    port: 80,
    ports: {},
    tags: ['a'],
    meta: { env: 'prod', 'consul-registered': 'true', 'consul-enable-tag-override': 'true' },
    weights: { passing: 3, warning: 1 },
    priority: 0,
    capacity: 0,
    protocols: [],
    source: 'self',
    managedBy: '',
    maintenance: { enabled: false, reason: '' },
    status: 'passing',
    statusReason: '',
    checks: [],
    createdAt: 0,
    updatedAt: 0,
    createIndex: 5,
    modifyIndex: 6,
    ...over,
  }) as InstanceDto;

describe('Consul shapes', () => {
  it('hides markers from Meta and shows check ids Consul would give native instances', () => {
    const s = agentService(node, dto());
    assert.deepEqual(s.Meta, { env: 'prod' });
    assert.equal(s.EnableTagOverride, true);
    assert.deepEqual(s.Weights, { Passing: 3, Warning: 1 });
    const check = { id: 'ttl', name: 'ttl check', kind: 'ttl' } as never;
    assert.equal(consulCheckId(dto({ meta: {}, checks: [check] }), check, 0), 'service:web-1');
    assert.equal(
      consulCheckId(dto({ meta: {}, checks: [check, check] }), check, 1),
      'service:web-1:2',
    );
    assert.equal(consulCheckId(dto({ checks: [check] }), check, 0), 'ttl');
  });

  it('adds the maintenance checks and aggregates as Consul does', () => {
    const checks = serviceChecks(node, dto({ maintenance: { enabled: true, reason: '' } }));
    assert.equal(checks[0]?.CheckID, '_service_maintenance:web-1');
    assert.equal(aggregatedStatus(checks), 'maintenance');
    const n = nodeChecks(node, { enabled: true, reason: 'x' });
    assert.deepEqual(
      n.map((c) => c.CheckID),
      ['serfHealth', '_node_maintenance'],
    );
    assert.equal(aggregatedStatus([{ CheckID: 'a', Status: 'warning' }]), 'warning');
    assert.equal(
      aggregatedStatus([
        { CheckID: 'a', Status: 'warning' },
        { CheckID: 'b', Status: 'critical' },
      ]),
      'critical',
    );
    assert.equal(aggregatedStatus([]), 'passing');
  });

  it('derives a stable UUID-shaped node id', () => {
    assert.match(nodeId('n1'), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(nodeId('n1'), nodeId('n1'));
    assert.notEqual(nodeId('n1'), nodeId('n2'));
  });
});
