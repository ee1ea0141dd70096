/** Eureka <-> catalog mapping (issue 23), through a real memory registry for the round trips. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { InstanceDto } from '../../../../src/protocol/api-types.js';
import { EUREKA_LEASE_CHECK_ID } from '../../../../src/registry-api/eureka/eureka-lease-contract.js';
import {
  catalogIdOf,
  createViewCache,
  EUREKA_META,
  eurekaStatusOf,
  findEurekaInstance,
  instanceView,
  leaseCheckStatus,
  registrationFromEureka,
  registryView,
  renewalOutput,
  serviceOfApp,
  vipListHas,
} from '../../../../src/registry-api/eureka/eureka-mapping.js';
import {
  DEFAULT_DATACENTER_CLASS,
  EurekaBodyError,
  type EurekaInstanceInput,
} from '../../../../src/registry-api/eureka/eureka-model.js';
import { startMemoryRegistry } from '../../../helpers/registry.js';

const input = (over: Partial<EurekaInstanceInput> = {}): EurekaInstanceInput => ({
  instanceId: 'host-1:orders:8080',
  app: 'ORDERS',
  appGroupName: undefined,
  hostName: 'host-1',
  ipAddr: '10.0.0.7',
  status: 'UP',
  overriddenStatus: 'UNKNOWN',
  port: { port: 8080, enabled: true },
  securePort: { port: 8443, enabled: false },
  vipAddress: 'orders,orders-v2',
  secureVipAddress: 'orders-secure',
  homePageUrl: 'http://host-1:8080/',
  statusPageUrl: undefined,
  healthCheckUrl: 'http://host-1:8080/health',
  secureHealthCheckUrl: undefined,
  dataCenterInfo: { name: 'MyOwn', className: DEFAULT_DATACENTER_CLASS, metadata: {} },
  leaseInfo: { renewalIntervalInSecs: 30, durationInSecs: 90 },
  metadata: { zone: 'a', 'management.port': '9090' },
  ...over,
});

const refusal = (fn: () => unknown, field: string): void => {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof EurekaBodyError, String(err));
    assert.equal(err.field, field);
    assert.ok(err.reason.length > 0);
    return true;
  });
};

describe('registrationFromEureka', () => {
  it('maps app, id, address, ports, lease and meta', () => {
    const r = registrationFromEureka(input(), 'orders', 1000);
    assert.equal(r.service, 'orders');
    assert.equal(r.eurekaId, 'host-1:orders:8080');
    const reg = r.registration;
    assert.equal(reg.id, 'orders:host-1:orders:8080');
    assert.equal(reg.address, '10.0.0.7');
    assert.equal(reg.port, 8080);
    assert.deepEqual(reg.ports, { http: 8080 });
    assert.equal(reg.meta?.[EUREKA_META.hostName], 'host-1');
    assert.equal(reg.meta?.[EUREKA_META.ports], '8080:on/8443:off');
    assert.equal(reg.meta?.[EUREKA_META.lease], '30/90');
    assert.equal(reg.meta?.zone, 'a');
    assert.equal(reg.meta?.[EUREKA_META.metadata], JSON.stringify({ 'management.port': '9090' }));
    assert.equal(reg.checks?.length, 1);
    assert.equal(reg.checks?.[0]?.id, EUREKA_LEASE_CHECK_ID);
    assert.equal(reg.checks?.[0]?.kind, 'ttl');
    assert.equal(reg.checks?.[0]?.ttlMs, 90_000);
  });

  it('uses hostName as the id when no instanceId is sent, and as the address when ipAddr is no IP', () => {
    const r = registrationFromEureka(
      input({ instanceId: undefined, hostName: 'localhost', ipAddr: 'not-an-ip' }),
      'ORDERS',
      1000,
    );
    assert.equal(r.registration.id, 'orders:localhost');
    assert.equal(r.registration.address, 'localhost');
    assert.equal(r.registration.meta?.[EUREKA_META.ipAddr], 'not-an-ip');
  });

  it('takes the secure port when only it is enabled, and raises the lease to the TTL floor', () => {
    const r = registrationFromEureka(
      input({
        port: { port: 8080, enabled: false },
        securePort: { port: 8443, enabled: true },
        leaseInfo: { renewalIntervalInSecs: 1, durationInSecs: 2 },
      }),
      'orders',
      5000,
    );
    assert.equal(r.registration.port, 8443);
    assert.deepEqual(r.registration.ports, { https: 8443 });
    assert.equal(r.registration.checks?.[0]?.ttlMs, 5000);
  });

  it('refuses bad input naming the field', () => {
    refusal(
      () => registrationFromEureka(input({ app: 'Bad_App' }), 'Bad_App', 1000),
      'instance.app',
    );
    refusal(() => registrationFromEureka(input(), 'payments', 1000), 'instance.app');
    refusal(
      () => registrationFromEureka(input({ instanceId: 'has space' }), 'orders', 1000),
      'instance.instanceId',
    );
    refusal(
      () => registrationFromEureka(input({ instanceId: 'x'.repeat(130) }), 'orders', 1000),
      'instance.instanceId',
    );
    refusal(
      () =>
        registrationFromEureka(
          input({ homePageUrl: `http://x/${'a'.repeat(600)}` }),
          'orders',
          1000,
        ),
      'instance.homePageUrl',
    );
    refusal(
      () =>
        registrationFromEureka(
          input({ hostName: 'bad host', ipAddr: 'also bad', instanceId: 'i1' }),
          'orders',
          1000,
        ),
      'instance.hostName',
    );
    const many = Object.fromEntries(Array.from({ length: 70 }, (_, n) => [`k${n}`, 'v']));
    refusal(
      () => registrationFromEureka(input({ metadata: many }), 'orders', 1000),
      'instance.metadata',
    );
    refusal(
      () =>
        registrationFromEureka(
          input({ leaseInfo: { renewalIntervalInSecs: 0, durationInSecs: 90 } }),
          'orders',
          1000,
        ),
      'instance.leaseInfo.renewalIntervalInSecs',
    );
    refusal(
      () => registrationFromEureka(input({ port: { port: 70000, enabled: true } }), 'orders', 1000),
      'instance.port.$',
    );
  });

  it('accepts exactly the ids the catalog accepts, or refuses naming instance.instanceId', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 140 }), (id) => {
        let ok: boolean;
        try {
          registrationFromEureka(input({ instanceId: id }), 'orders', 1000);
          ok = true;
        } catch (err) {
          assert.ok(err instanceof EurekaBodyError);
          assert.equal(err.field, 'instance.instanceId');
          ok = false;
        }
        const valid =
          /^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(id) && id.length <= 128 - 'orders:'.length;
        assert.equal(ok, valid, JSON.stringify(id));
      }),
      { seed: 23, numRuns: 300 },
    );
  });

  it('keeps any metadata map within the limits, or refuses naming instance.metadata', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 20 }), fc.string({ maxLength: 40 }), { maxKeys: 80 }),
        (metadata) => {
          try {
            const r = registrationFromEureka(input({ metadata }), 'orders', 1000);
            assert.ok(Object.keys(r.registration.meta ?? {}).length <= 64);
          } catch (err) {
            assert.ok(err instanceof EurekaBodyError, String(err));
            assert.match(err.field, /^instance\.metadata/);
          }
        },
      ),
      { seed: 23, numRuns: 200 },
    );
  });
});

describe('instanceView', () => {
  it('round-trips a Eureka registration through the catalog', async () => {
    const { registry } = await startMemoryRegistry();
    try {
      const r = registrationFromEureka(input(), 'orders', 1000);
      await registry.register(r.registration);
      await registry.heartbeat(
        r.registration.id ?? '',
        leaseCheckStatus('UP'),
        renewalOutput('UP'),
        EUREKA_LEASE_CHECK_ID,
      );
      const dto = registry.instance(r.registration.id ?? '');
      assert.ok(dto !== undefined);
      const v = instanceView(dto, { agentMaintenance: false });
      const i = input();
      assert.equal(v.instanceId, i.instanceId);
      assert.equal(v.app, 'ORDERS');
      assert.equal(v.hostName, i.hostName);
      assert.equal(v.ipAddr, i.ipAddr);
      assert.equal(v.status, 'UP');
      assert.equal(v.overriddenStatus, 'UNKNOWN');
      assert.deepEqual(v.port, i.port);
      assert.deepEqual(v.securePort, i.securePort);
      assert.equal(v.vipAddress, i.vipAddress);
      assert.equal(v.secureVipAddress, i.secureVipAddress);
      assert.equal(v.homePageUrl, i.homePageUrl);
      assert.equal(v.statusPageUrl, undefined);
      assert.equal(v.healthCheckUrl, i.healthCheckUrl);
      assert.deepEqual(v.dataCenterInfo, i.dataCenterInfo);
      assert.deepEqual(v.metadata, i.metadata);
      assert.equal(v.leaseInfo.renewalIntervalInSecs, 30);
      assert.equal(v.leaseInfo.durationInSecs, 90);
      assert.equal(
        findEurekaInstance((id) => registry.instance(id), 'orders', 'host-1:orders:8080')?.id,
        dto.id,
      );
      assert.equal(
        findEurekaInstance((id) => registry.instance(id), 'ORDERS', 'other'),
        undefined,
      );
      assert.equal(
        findEurekaInstance((id) => registry.instance(id), 'payments', 'host-1:orders:8080'),
        undefined,
      );
    } finally {
      await registry.close();
    }
  });

  it('shows an instance registered another way with its catalog id, address and https port', async () => {
    const { registry } = await startMemoryRegistry();
    try {
      await registry.register({
        service: 'web',
        id: 'web-1',
        address: '10.1.1.1',
        port: 80,
        ports: { https: 443 },
        meta: { version: '2' },
      });
      const dto = registry.instance('web-1');
      assert.ok(dto !== undefined);
      const v = instanceView(dto, { agentMaintenance: false });
      assert.equal(v.instanceId, 'web-1');
      assert.equal(v.app, 'WEB');
      assert.equal(v.hostName, '10.1.1.1');
      assert.equal(v.ipAddr, '10.1.1.1');
      assert.deepEqual(v.port, { port: 80, enabled: true });
      assert.deepEqual(v.securePort, { port: 443, enabled: true });
      assert.equal(v.vipAddress, 'web');
      assert.equal(v.dataCenterInfo.name, 'MyOwn');
      assert.deepEqual(v.metadata, { version: '2' });
      assert.equal(v.status, 'UP');
      assert.equal(findEurekaInstance((id) => registry.instance(id), 'WEB', 'web-1')?.id, 'web-1');
      assert.equal(instanceView(dto, { agentMaintenance: true }).status, 'OUT_OF_SERVICE');
      const r = registryView(registry.allInstances(), { agentMaintenance: false }, 5);
      assert.equal(r.appsHashCode, 'UP_1_');
      assert.equal(r.versionsDelta, 5);
      assert.deepEqual(
        r.applications.map((a) => a.name),
        ['WEB'],
      );
    } finally {
      await registry.close();
    }
  });
});

describe('eurekaStatusOf', () => {
  const dto = (
    status: InstanceDto['status'],
    reported?: string,
    maintenance = false,
  ): Pick<InstanceDto, 'status' | 'maintenance' | 'meta'> => ({
    status,
    maintenance: { enabled: maintenance, reason: '' },
    meta: reported === undefined ? {} : { [EUREKA_META.status]: reported },
  });
  it('maps health and maintenance to Eureka statuses', () => {
    assert.equal(eurekaStatusOf(dto('passing'), false), 'UP');
    assert.equal(eurekaStatusOf(dto('warning'), false), 'UP');
    assert.equal(eurekaStatusOf(dto('starting'), false), 'STARTING');
    assert.equal(eurekaStatusOf(dto('critical'), false), 'DOWN');
    assert.equal(eurekaStatusOf(dto('critical', 'STARTING'), false), 'STARTING');
    assert.equal(eurekaStatusOf(dto('critical', 'UNKNOWN'), false), 'UNKNOWN');
    assert.equal(eurekaStatusOf(dto('critical', 'UP'), false), 'DOWN');
    assert.equal(eurekaStatusOf(dto('maintenance'), false), 'OUT_OF_SERVICE');
    assert.equal(eurekaStatusOf(dto('passing', undefined, true), false), 'OUT_OF_SERVICE');
    assert.equal(eurekaStatusOf(dto('passing'), true), 'OUT_OF_SERVICE');
  });
});

describe('ids and vips', () => {
  it('lower-cases apps into services and prefixes ids with them', () => {
    assert.equal(serviceOfApp('ORDERS'), 'orders');
    assert.equal(serviceOfApp('MY_APP'), undefined);
    assert.equal(catalogIdOf('orders', 'localhost'), 'orders:localhost');
  });
  it('finds a vip in a comma-separated list', () => {
    assert.ok(vipListHas('a,b , c', 'b'));
    assert.ok(!vipListHas('ab,c', 'a'));
    assert.ok(!vipListHas(undefined, 'a'));
  });
});

describe('createViewCache', () => {
  it('reuses a view while the instance is unchanged, patches the last renewal, rebuilds on change', async () => {
    const { registry } = await startMemoryRegistry();
    try {
      await registry.register({ service: 'web', id: 'web-1', address: '10.1.1.1', port: 80 });
      const viewOf = createViewCache();
      const ctx = { agentMaintenance: false };
      const first = viewOf(registry.instance('web-1') as InstanceDto, ctx);
      assert.equal(viewOf(registry.instance('web-1') as InstanceDto, ctx), first);
      const renewed = viewOf(registry.instance('web-1') as InstanceDto, {
        ...ctx,
        lastRenewal: () => 42,
      });
      assert.equal(renewed.leaseInfo.lastRenewalTimestamp, 42);
      assert.equal(
        viewOf(registry.instance('web-1') as InstanceDto, { agentMaintenance: true }).status,
        'OUT_OF_SERVICE',
      );
      await registry.setMaintenance('web-1', true, 'x');
      const after = viewOf(registry.instance('web-1') as InstanceDto, ctx);
      assert.notEqual(after, first);
      assert.equal(after.status, 'OUT_OF_SERVICE');
      assert.equal(viewOf.size(), 1);
      viewOf.forget('web-1');
      assert.equal(viewOf.size(), 0);
    } finally {
      await registry.close();
    }
  });
});
