/** The Eureka lease keeper's bookkeeping: renewal buckets, thresholds, self-preservation (issue 23). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry as PromRegistry } from 'prom-client';
import type { InstanceDto } from '../../../../src/protocol/api-types.js';
import type { CatalogFacade } from '../../../../src/registry/catalog-facade.js';
import {
  EUREKA_LEASE_CHECK_ID,
  EUREKA_RENEWAL_OUTPUT,
  LEASE_EXPIRED_OUTPUT,
} from '../../../../src/registry-api/eureka/eureka-lease-contract.js';
import {
  countRenewal,
  createEurekaLeaseKeeper,
  leaseOfMeta,
  leaseLapsed,
  newServiceRenewals,
  renewalThreshold,
  rollRenewals,
  setExpected,
} from '../../../../src/registry-api/eureka/eureka-leases.js';
import { FakeClock, flushMicrotasks } from '../../../../src/testing/fake-clock.js';
import { recordingLogger } from '../../../helpers/recording-logger.js';

const MINUTE = 60_000;

interface FakeInstance {
  id: string;
  service: string;
  meta: Record<string, string>;
  checks: { id: string; status: 'passing' | 'critical'; output: string }[];
}

/** A catalog of Eureka-shaped instances: what the keeper reads and the deregistrations it makes. */
function fakeCatalog() {
  const instances = new Map<string, FakeInstance>();
  const deregistered: string[] = [];
  let onDeregister: (id: string) => void = () => undefined;
  const registry = {
    allInstances: () => [...instances.values()] as unknown as InstanceDto[],
    instance: (id: string) => instances.get(id) as unknown as InstanceDto | undefined,
    deregister: (id: string) => {
      const deleted = instances.delete(id);
      if (deleted) deregistered.push(id);
      onDeregister(id);
      return Promise.resolve({ index: 1, deleted });
    },
  } as unknown as CatalogFacade;
  const add = (service: string, n: number, intervalSecs = 30): string[] =>
    Array.from({ length: n }, (_, k) => {
      const id = `${service}:i-${k}`;
      instances.set(id, {
        id,
        service,
        meta: { 'eureka-instance-id': `i-${k}`, 'eureka-lease': `${intervalSecs}/90` },
        checks: [{ id: EUREKA_LEASE_CHECK_ID, status: 'passing', output: EUREKA_RENEWAL_OUTPUT }],
      });
      return id;
    });
  const lapse = (id: string): void => {
    instances.get(id)!.checks[0] = {
      id: EUREKA_LEASE_CHECK_ID,
      status: 'critical',
      output: LEASE_EXPIRED_OUTPUT,
    };
  };
  const whenDeregistered = (fn: (id: string) => void): void => {
    onDeregister = fn;
  };
  return { registry, instances, deregistered, add, lapse, whenDeregistered };
}

function keeperFor(selfPreservation: boolean, metrics?: PromRegistry) {
  const clock = new FakeClock();
  const catalog = fakeCatalog();
  const { logger, lines } = recordingLogger();
  const keeper = createEurekaLeaseKeeper({
    registry: catalog.registry,
    clock,
    options: { selfPreservation, renewalPercentThreshold: 0.85, evictionIntervalMs: MINUTE },
    logger,
    ...(metrics === undefined ? {} : { metrics }),
  });
  return { clock, catalog, keeper, lines };
}

describe('renewal buckets (MeasuredRate)', () => {
  it('judges the last full minute: the current one fills, a silent minute empties it', () => {
    const s = newServiceRenewals(0);
    for (let k = 0; k < 5; k++) countRenewal(s, 10_000 + k);
    rollRenewals(s, MINUTE - 1);
    assert.deepEqual([s.measured, s.last, s.current], [false, 0, 5]);
    rollRenewals(s, MINUTE);
    assert.deepEqual([s.measured, s.last, s.current], [true, 5, 0]);
    countRenewal(s, MINUTE + 5);
    rollRenewals(s, 3 * MINUTE + 1);
    // Two minutes passed: the last full minute (2-3) saw nothing.
    assert.deepEqual([s.last, s.current, s.bucketStartMs], [0, 0, 3 * MINUTE]);
  });

  it('sums expected rates per instance and drops them on removal', () => {
    const s = newServiceRenewals(0);
    setExpected(s, 'a', 2);
    setExpected(s, 'b', 2);
    setExpected(s, 'a', 6);
    assert.equal(s.expectedPerMinute, 8);
    setExpected(s, 'a', undefined);
    setExpected(s, 'b', undefined);
    assert.equal(s.expectedPerMinute, 0);
  });

  it("rounds Eureka's threshold down, without float slips", () => {
    assert.equal(renewalThreshold(40, 0.85), 34);
    assert.equal(renewalThreshold(2, 0.85), 1);
    assert.equal(renewalThreshold(0, 0.85), 0);
    assert.equal(renewalThreshold(20, 0.85), 17);
  });

  it("reads the lease from meta, Eureka's 30/90 for what it does not say", () => {
    assert.deepEqual(leaseOfMeta('10/30'), { renewalIntervalInSecs: 10, durationInSecs: 30 });
    assert.deepEqual(leaseOfMeta(undefined), { renewalIntervalInSecs: 30, durationInSecs: 90 });
    assert.deepEqual(leaseOfMeta('x/-1'), { renewalIntervalInSecs: 30, durationInSecs: 90 });
    assert.deepEqual(leaseOfMeta('0/45'), { renewalIntervalInSecs: 30, durationInSecs: 45 });
  });

  it('tells a lapsed lease (TTL expired) from a DOWN one (critical, renewing)', () => {
    const inst = (status: string, output: string) =>
      ({ checks: [{ id: EUREKA_LEASE_CHECK_ID, status, output }] }) as unknown as InstanceDto;
    assert.equal(leaseLapsed(inst('critical', LEASE_EXPIRED_OUTPUT)), true);
    assert.equal(leaseLapsed(inst('critical', `${EUREKA_RENEWAL_OUTPUT}DOWN`)), false);
    assert.equal(leaseLapsed(inst('passing', `${EUREKA_RENEWAL_OUTPUT}UP`)), false);
  });
});

describe('EurekaLeaseKeeper', () => {
  it('reports rates with enabled and active false, and evicts lapsed leases, when off', async () => {
    const { catalog, keeper } = keeperFor(false);
    const ids = catalog.add('orders', 4);
    const [state] = keeper.states();
    assert.equal(state?.service, 'orders');
    assert.equal(state?.enabled, false);
    assert.equal(state?.active, false);
    assert.equal(state?.expectedRenewalsPerMinute, 8);
    assert.equal(state?.thresholdPerMinute, 6);
    assert.match(state?.reason ?? '', /self-preservation is off/);
    catalog.lapse(ids[0]!);
    catalog.lapse(ids[1]!);
    const { evicted } = await keeper.evict();
    assert.deepEqual(evicted, [ids[0], ids[1]]);
    assert.equal(keeper.states()[0]?.expectedRenewalsPerMinute, 4);
    keeper.close();
  });

  it('starts when renewals fall below the threshold, keeps lapsed leases, ends when they recover', async () => {
    const { clock, catalog, keeper, lines } = keeperFor(true);
    const ids = catalog.add('orders', 4); // 8 expected per minute, threshold 6
    catalog.add('users', 1);
    // Not judged before a full minute is measured.
    assert.equal(keeper.states()[0]?.active, false);
    assert.match(keeper.states()[0]?.reason ?? '', /measuring/);
    for (const id of [...ids.slice(0, 2), ...ids.slice(0, 2)]) keeper.renewed('orders', id);
    keeper.renewed('users', 'users:i-0');
    keeper.renewed('users', 'users:i-0');
    clock.advance(MINUTE);
    const orders = keeper.states().find((s) => s.service === 'orders');
    assert.equal(orders?.active, true);
    assert.equal(orders?.renewalsLastMinute, 4);
    assert.equal(
      orders?.reason,
      'renewals in the last minute 4 < threshold 6 (85% of 8 expected): expiry paused; POST /api/v1/eureka/self-preservation/reset?service=orders to evict the lapsed leases now, or wait for renewals to recover',
    );
    assert.equal(orders?.since, clock.now());
    assert.equal(keeper.states().find((s) => s.service === 'users')?.active, false);
    const started = lines.filter((l) => l.level === 'warn');
    assert.equal(started.length, 1);
    assert.equal(started[0]?.fields.service, 'orders');
    assert.equal(started[0]?.fields.renewalsLastMinute, 4);

    catalog.lapse(ids[2]!);
    catalog.lapse(ids[3]!);
    assert.deepEqual((await keeper.evict()).evicted, []);
    assert.equal(keeper.states().find((s) => s.service === 'orders')?.expiredKept, 2);

    // Renewals back at the threshold: it ends, and the next pass evicts.
    for (let k = 0; k < 6; k++) keeper.renewed('orders', ids[k % 2]!);
    clock.advance(MINUTE);
    const recovered = keeper.states().find((s) => s.service === 'orders');
    assert.equal(recovered?.active, false);
    assert.equal(recovered?.expiredKept, 0);
    assert.ok(lines.some((l) => l.level === 'info' && /ended/.test(l.msg)));
    // The timer's pass at that minute evicted them.
    await flushMicrotasks();
    assert.deepEqual(catalog.deregistered, [ids[2], ids[3]]);
    keeper.close();
  });

  it('ends when instances cancel and the expected rate drops', () => {
    const { clock, catalog, keeper } = keeperFor(true);
    const ids = catalog.add('orders', 4);
    keeper.renewed('orders', ids[0]!);
    keeper.renewed('orders', ids[0]!);
    clock.advance(MINUTE);
    assert.equal(keeper.states()[0]?.active, true);
    for (const id of ids.slice(1)) {
      catalog.instances.delete(id);
      keeper.cancelled('orders', id);
    }
    // One instance left: 2 expected, threshold 1, 2 renewals seen.
    const [state] = keeper.states();
    assert.equal(state?.expectedRenewalsPerMinute, 2);
    assert.equal(state?.active, false);
    keeper.close();
  });

  it('reset evicts the lapsed leases of the service only and measures afresh', async () => {
    const { clock, catalog, keeper } = keeperFor(true);
    const orders = catalog.add('orders', 2);
    const users = catalog.add('users', 2);
    for (const id of [...orders, ...users])
      keeper.registered(id.split(':')[0]!, id, { renewalIntervalInSecs: 30, durationInSecs: 90 });
    clock.advance(MINUTE);
    assert.deepEqual(
      keeper.states().map((s) => s.active),
      [true, true],
    );
    catalog.lapse(orders[0]!);
    catalog.lapse(users[0]!);
    assert.deepEqual(await keeper.reset('orders'), { evicted: [orders[0]] });
    const [o, u] = keeper.states();
    assert.equal(o?.active, false);
    assert.match(o?.reason ?? '', /measuring/);
    assert.equal(u?.active, true);
    assert.deepEqual(catalog.deregistered, [orders[0]]);
    // Still silent a minute after the reset: it starts again.
    clock.advance(MINUTE);
    assert.equal(keeper.states()[0]?.active, true);
    keeper.close();
  });

  it('evicts on its timer every evictionIntervalMs, not before', async () => {
    const { clock, catalog, keeper } = keeperFor(false);
    const [id] = catalog.add('orders', 1);
    catalog.lapse(id!);
    clock.advance(MINUTE - 1);
    await flushMicrotasks();
    assert.deepEqual(catalog.deregistered, []);
    clock.advance(1);
    await flushMicrotasks();
    assert.deepEqual(catalog.deregistered, [id]);
    keeper.close();
    assert.equal(clock.pendingTimers, 0);
  });

  it('remembers the last renewal per id, keeps a lease renewed within its duration, forgets it once gone', async () => {
    const { clock, catalog, keeper } = keeperFor(false);
    const [id] = catalog.add('orders', 1);
    keeper.renewed('orders', id!);
    assert.equal(keeper.lastRenewal(id!), clock.now());
    // Critical with the TTL output, but renewed (DOWN) within the lease's 90 s: kept.
    catalog.lapse(id!);
    // (advanceAsync: the timer's pass at 60 s settles at 60 s.)
    await clock.advanceAsync(89_000, 1_000);
    assert.deepEqual((await keeper.evict()).evicted, []);
    await clock.advanceAsync(1_000, 1_000);
    assert.deepEqual(catalog.deregistered, []);
    assert.deepEqual((await keeper.evict()).evicted, [id]);
    assert.equal(keeper.lastRenewal(id!), undefined);
    keeper.close();
  });

  it('skips an instance renewed while the pass evicted others', async () => {
    const { catalog, keeper } = keeperFor(false);
    const ids = catalog.add('orders', 2);
    for (const id of ids) catalog.lapse(id);
    // The second renews (UP) while the first one's deregistration commits.
    catalog.whenDeregistered(() => {
      catalog.instances.get(ids[1]!)!.checks[0] = {
        id: EUREKA_LEASE_CHECK_ID,
        status: 'passing',
        output: `${EUREKA_RENEWAL_OUTPUT}UP`,
      };
    });
    assert.deepEqual((await keeper.evict()).evicted, [ids[0]]);
    assert.ok(catalog.instances.has(ids[1]!));
    keeper.close();
  });

  it('shows its state and counts in metrics', async () => {
    const metrics = new PromRegistry();
    const { clock, catalog, keeper } = keeperFor(true, metrics);
    const ids = catalog.add('orders', 2);
    keeper.renewed('orders', ids[0]!);
    clock.advance(MINUTE);
    catalog.lapse(ids[1]!);
    await keeper.evict();
    const text = await metrics.metrics();
    assert.match(text, /meshwork_eureka_self_preservation_active\{service="orders"\} 1/);
    assert.match(text, /meshwork_eureka_renewals_expected_per_minute\{service="orders"\} 4/);
    assert.match(text, /meshwork_eureka_renewals_last_minute\{service="orders"\} 1/);
    assert.match(text, /meshwork_eureka_expired_kept\{service="orders"\} 1/);
    assert.match(text, /meshwork_eureka_renewals_total 1/);
    assert.match(text, /meshwork_eureka_evictions_total 0/);
    await keeper.reset();
    assert.match(await metrics.metrics(), /meshwork_eureka_evictions_total 1/);
    keeper.close();
  });
});
