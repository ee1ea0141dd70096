import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODES, isMeshError } from '../../../../src/core/errors.js';
import {
  BALANCER_TYPES,
  createBalancer,
  toEndpoints,
  type BalancerSpec,
} from '../../../../src/client/balancers/index.js';
import { resolveBalancerSpec } from '../../../../src/client/balancers/options.js';
import type { InstanceDto } from '../../../../src/protocol/api-types.js';
import type { InstanceStatus } from '../../../../src/core/types.js';

/** The problems of the MeshError that `spec` makes createBalancer throw. */
function problemsOf(spec: unknown): readonly string[] {
  try {
    createBalancer(spec as BalancerSpec);
  } catch (err) {
    assert.ok(isMeshError(err, ERROR_CODES.BALANCER_INVALID), String(err));
    return err.details!.problems as string[];
  }
  assert.fail('createBalancer accepted the spec');
}

function instance(id: string, status: InstanceStatus, overrides: Partial<InstanceDto> = {}) {
  return {
    id,
    service: 'web',
    address: `10.0.0.${id.length}`,
    port: 8080,
    ports: {},
    tags: ['v2'],
    meta: { zone: 'eu-west-1b' },
    weights: { passing: 10, warning: 2 },
    priority: 1,
    capacity: 0,
    protocols: ['http'],
    source: 'self',
    managedBy: '',
    checks: [],
    maintenance: { enabled: false, reason: '' },
    createdAt: 0,
    updatedAt: 0,
    status,
    statusReason: '',
    createIndex: 1,
    modifyIndex: 1,
    ...overrides,
  } satisfies InstanceDto;
}

describe('createBalancer', () => {
  it('makes every kind by name or by { type }, with its name as kind', () => {
    for (const type of BALANCER_TYPES) {
      const spec = (
        type === 'zone-aware' ? { type, localZone: 'eu-west-1a' } : type
      ) as BalancerSpec;
      assert.equal(createBalancer(spec).kind, type);
      if (type !== 'zone-aware') assert.equal(createBalancer({ type } as BalancerSpec).kind, type);
    }
  });

  it('fills in the documented defaults', () => {
    assert.deepEqual(resolveBalancerSpec('ring-hash'), {
      type: 'ring-hash',
      minRingSize: 1024,
      maxRingSize: 8_388_608,
    });
    assert.deepEqual(resolveBalancerSpec('maglev'), { type: 'maglev', tableSize: 65_537 });
    assert.deepEqual(resolveBalancerSpec('least-request'), { type: 'least-request', choices: 2 });
    assert.deepEqual(resolveBalancerSpec({ type: 'zone-aware', localZone: 'z' }), {
      type: 'zone-aware',
      localZone: 'z',
      inner: { type: 'weighted-round-robin' },
      minHealthyPercent: 70,
      overloadInFlight: 100,
    });
  });

  it('rejects an unknown name and lists the valid ones', () => {
    for (const spec of ['round-robbin', { type: 'fastest' }, 42, null, {}]) {
      const [problem, ...rest] = problemsOf(spec);
      assert.deepEqual(rest, []);
      assert.match(problem!, /unknown balancer/);
      for (const type of BALANCER_TYPES) assert.ok(problem!.includes(type), problem);
    }
  });

  it('lists every bad option in one error, nested inner spec included', () => {
    const problems = problemsOf({
      type: 'zone-aware',
      localZone: '',
      minHealthyPercent: 101,
      inner: { type: 'maglev', tableSize: 65_536, extra: true },
    });
    assert.equal(problems.length, 4, problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('balancer.localZone')));
    assert.ok(problems.some((p) => p.startsWith('balancer.minHealthyPercent')));
    assert.ok(problems.some((p) => p.startsWith('balancer.inner.tableSize: must be a prime')));
    assert.ok(problems.some((p) => p.startsWith('balancer.inner') && /extra/.test(p)));
  });

  it('rejects bad options of each kind', () => {
    assert.equal(problemsOf({ type: 'least-request', choices: 1 }).length, 1);
    assert.match(
      problemsOf({ type: 'ring-hash', minRingSize: 4096, maxRingSize: 1024 })[0]!,
      /^balancer\.minRingSize: must not exceed maxRingSize/,
    );
    assert.equal(problemsOf({ type: 'round-robin', choices: 2 }).length, 1);
    assert.match(
      problemsOf({
        type: 'zone-aware',
        localZone: 'a',
        inner: { type: 'zone-aware', localZone: 'b' },
      })[0]!,
      /^balancer\.inner: zone-aware cannot be nested/,
    );
  });
});

describe('toEndpoints', () => {
  it('keeps passing and warning instances, with their effective weight, sorted by id', () => {
    const endpoints = toEndpoints([
      instance('c', 'warning'),
      instance('b', 'critical'),
      instance('a', 'passing'),
      instance('d', 'maintenance'),
      instance('e', 'starting'),
      instance('f', 'warning', { weights: { passing: 5, warning: 0 } }),
      instance('ab', 'passing', { meta: {}, priority: 0 }),
    ]);
    assert.deepEqual(
      endpoints.map((e) => [e.id, e.status, e.weight, e.zone, e.priority]),
      [
        ['a', 'passing', 10, 'eu-west-1b', 1],
        ['ab', 'passing', 10, undefined, 0],
        ['c', 'warning', 2, 'eu-west-1b', 1],
      ],
    );
    assert.deepEqual(endpoints[0], {
      id: 'a',
      address: '10.0.0.1',
      port: 8080,
      weight: 10,
      status: 'passing',
      zone: 'eu-west-1b',
      priority: 1,
      tags: ['v2'],
      meta: { zone: 'eu-west-1b' },
    });
  });
});
