/**
 * Eureka leases against a real agent (issue 23): instances shaped as the Eureka mapping registers
 * them (meta `eureka-instance-id` and `eureka-lease`, one TTL check `eureka-lease`), renewed as
 * the routes renew them; the registry runs on a fake clock, so lease durations and eviction
 * passes are advanced, not slept. Self-preservation is read through the native API and /metrics.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { CheckStatus } from '../../src/core/types.js';
import {
  EUREKA_LEASE_CHECK_ID,
  EUREKA_RENEWAL_OUTPUT,
  LEASE_EXPIRED_OUTPUT,
  type EurekaLeaseKeeper,
} from '../../src/registry-api/eureka/eureka-lease-contract.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { bootstrapAcl, tokenWithRules } from '../helpers/acl-tokens.js';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { recordingLogger, type LoggedLine } from '../helpers/recording-logger.js';
import { until } from '../helpers/until.js';

const SEC = 1000;
const LEASE = { renewalIntervalInSecs: 30, durationInSecs: 90 };

interface Scenario {
  readonly agent: TestAgent;
  readonly keeper: EurekaLeaseKeeper;
  readonly logs: readonly LoggedLine[];
  /** Registers `n` instances of `service` as the mapping does, and renews each once. */
  register(service: string, n: number): Promise<string[]>;
  /** A renewal as the routes make it: the lease check's heartbeat, then the keeper told. */
  renew(id: string, status?: 'UP' | 'DOWN'): Promise<void>;
  /**
   * Advances the registry's clock to `sec` seconds after the agent started, renewing every
   * 30 s (at 30, 60, ...) the instances `renewing()` answers at that moment.
   */
  runTo(sec: number, renewing?: () => readonly (readonly [string, 'UP' | 'DOWN'])[]): Promise<void>;
  exists(id: string): boolean;
}

let current: TestAgent | undefined;
afterEach(async () => {
  await current?.stop();
  current = undefined;
});

async function scenario(selfPreservation: boolean): Promise<Scenario> {
  const clock = new FakeClock();
  const { logger, lines: logs } = recordingLogger();
  const agent = await startTestAgent({
    flags: { eureka: { selfPreservation, evictionIntervalMs: 60 * SEC } },
    deps: { registryClock: clock },
    logger,
  });
  current = agent;
  const keeper = agent.eurekaLeases;
  assert.ok(keeper, 'the agent runs a lease keeper with eureka enabled');
  const serviceOf = (id: string): string => id.slice(0, id.indexOf(':'));
  const renew = async (id: string, status: 'UP' | 'DOWN' = 'UP'): Promise<void> => {
    const check: CheckStatus = status === 'UP' ? 'passing' : 'critical';
    await agent.registry.heartbeat(
      id,
      check,
      EUREKA_RENEWAL_OUTPUT + status,
      EUREKA_LEASE_CHECK_ID,
    );
    keeper.renewed(serviceOf(id), id);
  };
  return {
    agent,
    keeper,
    logs,
    renew,
    register: async (service, n) => {
      const ids: string[] = [];
      for (let k = 0; k < n; k++) {
        const eurekaId = `${service}-host-${k}`;
        const id = `${service}:${eurekaId}`;
        await agent.registry.register({
          service,
          id,
          address: '127.0.0.1',
          port: 8000 + k,
          meta: {
            'eureka-instance-id': eurekaId,
            'eureka-lease': `${LEASE.renewalIntervalInSecs}/${LEASE.durationInSecs}`,
          },
          checks: [{ id: EUREKA_LEASE_CHECK_ID, kind: 'ttl', ttlMs: LEASE.durationInSecs * SEC }],
        });
        keeper.registered(service, id, LEASE);
        await renew(id);
        ids.push(id);
      }
      return ids;
    },
    runTo: async (sec, renewing = () => []) => {
      while (clock.monotonicMs() < sec * SEC) {
        const next = Math.min(
          sec * SEC,
          (Math.floor(clock.monotonicMs() / (30 * SEC)) + 1) * 30 * SEC,
        );
        // One-second steps let each eviction pass settle before the clock moves on.
        await clock.advanceAsync(next - clock.monotonicMs(), SEC);
        if (clock.monotonicMs() % (30 * SEC) === 0)
          for (const [id, status] of renewing()) await renew(id, status);
      }
    },
    exists: (id) => agent.registry.instance(id) !== undefined,
  };
}

const leaseCheck = (agent: TestAgent, id: string) =>
  agent.registry.instance(id)?.checks.find((c) => c.id === EUREKA_LEASE_CHECK_ID);

const statesOf = async (agent: TestAgent) =>
  (await http(agent.url, 'GET', '/api/v1/eureka/self-preservation')).body as {
    enabled: boolean;
    services: {
      service: string;
      active: boolean;
      expiredKept: number;
      renewalsLastMinute: number;
      thresholdPerMinute: number;
      expectedRenewalsPerMinute: number;
      reason: string;
    }[];
  };

const resetAt = (agent: TestAgent, query: string) =>
  http(agent.url, 'POST', `/api/v1/eureka/self-preservation/reset${query}`);

const metricsText = async (agent: TestAgent): Promise<string> =>
  (await http(agent.url, 'GET', '/metrics')).text;

describe('Eureka leases: eviction (self-preservation off, the default)', () => {
  it('evicts a lease at the first eviction pass after it lapsed, not before; renewing and DOWN instances stay', async () => {
    const s = await scenario(false);
    const [silent] = await s.register('billing', 1);
    const [renewing, down] = await s.register('ledger', 2);
    const renewers = () =>
      [
        [renewing!, 'UP'],
        [down!, 'DOWN'],
      ] as const;
    await s.renew(down!, 'DOWN');
    await s.runTo(89, renewers);
    assert.equal(leaseCheck(s.agent, silent!)?.status, 'passing');
    await s.runTo(91, renewers);
    const lapsed = await until(
      () =>
        leaseCheck(s.agent, silent!)?.status === 'critical'
          ? leaseCheck(s.agent, silent!)
          : undefined,
      5_000,
      'the silent lease critical',
    );
    assert.equal(lapsed.output, LEASE_EXPIRED_OUTPUT);
    // Read by a Eureka reader as DOWN, still listed until the next pass (at 120 s).
    await s.runTo(119, renewers);
    assert.ok(s.exists(silent!), 'not evicted before the eviction pass');
    await s.runTo(120, renewers);
    await until(() => !s.exists(silent!), 5_000, 'the lapsed lease evicted');
    assert.ok(
      s.logs.some((l) => l.msg === 'eureka lease evicted' && l.fields.id === silent),
      'the eviction is logged',
    );
    assert.match(await metricsText(s.agent), /^meshwork_eureka_evictions_total 1$/m);

    await s.runTo(400, renewers);
    assert.ok(s.exists(renewing!), 'an instance renewing on time is never evicted');
    assert.ok(s.exists(down!), 'a DOWN-reported instance (critical, renewing) is not evicted');
    assert.equal(leaseCheck(s.agent, down!)?.status, 'critical');
    assert.equal(leaseCheck(s.agent, down!)?.output, `${EUREKA_RENEWAL_OUTPUT}DOWN`);

    const state = await statesOf(s.agent);
    assert.equal(state.enabled, false);
    const ledger = state.services.find((x) => x.service === 'ledger');
    assert.equal(ledger?.active, false);
    assert.equal(ledger?.expectedRenewalsPerMinute, 4);
    assert.equal(ledger?.renewalsLastMinute, 4);
    assert.match(ledger?.reason ?? '', /self-preservation is off/);
  });

  it('keeps an instance that renews DOWN after its lease lapsed', async () => {
    const s = await scenario(false);
    const [late] = await s.register('billing', 1);
    await s.runTo(95);
    assert.equal(leaseCheck(s.agent, late!)?.output, LEASE_EXPIRED_OUTPUT);
    // A heartbeat that keeps the check critical leaves the registry's output as it was: the keeper
    // knows the lease renewed from the renewals it saw.
    await s.renew(late!, 'DOWN');
    await s.runTo(180, () => [[late!, 'DOWN']]);
    assert.ok(s.exists(late!), 'renewing, if DOWN: not evicted');
    assert.equal(leaseCheck(s.agent, late!)?.status, 'critical');
    // Once it stops renewing, the lease lapses again and the next pass evicts it.
    await s.runTo(300);
    await until(() => !s.exists(late!), 5_000, 'the silent DOWN instance evicted');
  });

  it('evicts every lapsed lease of a service when most stop renewing', async () => {
    const s = await scenario(false);
    const ids = await s.register('orders', 4);
    await s.runTo(60, () => ids.map((id) => [id, 'UP'] as const));
    await s.runTo(180, () => [[ids[0]!, 'UP']]);
    await until(() => ids.slice(1).every((id) => !s.exists(id)), 5_000, 'three evicted');
    assert.ok(s.exists(ids[0]!));
    const orders = (await statesOf(s.agent)).services.find((x) => x.service === 'orders');
    assert.equal(orders?.active, false);
  });
});

describe('Eureka leases: self-preservation on', () => {
  it('starts when most instances of a service stop renewing, keeps their lapsed leases, and the reset evicts them', async () => {
    const s = await scenario(true);
    const orders = await s.register('orders', 4); // 8 renewals a minute expected, threshold 6
    const users = await s.register('users', 2);
    const all = () => [...orders, ...users].map((id) => [id, 'UP'] as const);
    await s.runTo(60, all);
    // From 90 s only one orders instance renews: 5 renewals in [60, 120), then 2 a minute.
    const few = () => [[orders[0]!, 'UP'] as const, ...users.map((id) => [id, 'UP'] as const)];
    await s.runTo(120, few);
    let state = await statesOf(s.agent);
    assert.equal(state.enabled, true);
    const started = state.services.find((x) => x.service === 'orders');
    assert.equal(started?.active, true);
    assert.equal(started?.renewalsLastMinute, 5);
    assert.equal(started?.thresholdPerMinute, 6);
    assert.equal(
      started?.reason,
      'renewals in the last minute 5 < threshold 6 (85% of 8 expected): expiry paused; POST /api/v1/eureka/self-preservation/reset?service=orders to evict the lapsed leases now, or wait for renewals to recover',
    );
    assert.equal(state.services.find((x) => x.service === 'users')?.active, false);
    const warn = s.logs.find((l) => l.level === 'warn' && /self-preservation started/.test(l.msg));
    assert.equal(warn?.fields.service, 'orders');
    assert.equal(warn?.fields.renewalsLastMinute, 5);
    assert.match(
      await metricsText(s.agent),
      /^meshwork_eureka_self_preservation_active\{service="orders"\} 1$/m,
    );

    // Their leases lapse at 150 s; the passes at 180 and 240 s keep them.
    await s.runTo(240, few);
    for (const id of orders.slice(1)) {
      assert.ok(s.exists(id), `${id} kept`);
      assert.equal(leaseCheck(s.agent, id)?.output, LEASE_EXPIRED_OUTPUT);
    }
    state = await statesOf(s.agent);
    assert.equal(state.services.find((x) => x.service === 'orders')?.expiredKept, 3);
    const text = await metricsText(s.agent);
    assert.match(text, /^meshwork_eureka_expired_kept\{service="orders"\} 3$/m);
    assert.match(text, /^meshwork_eureka_self_preservation_active\{service="users"\} 0$/m);
    // Readers see them critical (Eureka: DOWN), not passing.
    const listed = await http(s.agent.url, 'GET', '/api/v1/services/orders/instances');
    const critical = (listed.body.instances as { id: string; status: string }[])
      .filter((i) => i.status === 'critical')
      .map((i) => i.id)
      .sort();
    assert.deepEqual(critical, orders.slice(1).sort());

    const bad = await resetAt(s.agent, '?service=Not_A_Name');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'service');
    assert.match(bad.body.error.message, /must be a service name/);
    const twice = await resetAt(s.agent, '?service=orders&service=users');
    assert.equal(twice.status, 400);
    assert.equal(twice.body.error.field, 'service');
    assert.ok(
      orders.slice(1).every((id) => s.exists(id)),
      'a refused reset evicts nothing',
    );

    const reset = await resetAt(s.agent, '?service=orders');
    assert.equal(reset.status, 200);
    assert.deepEqual([...(reset.body.evicted as string[])].sort(), orders.slice(1).sort());
    assert.ok(s.exists(orders[0]!));
    assert.ok(
      users.every((id) => s.exists(id)),
      'another service is not affected',
    );
    const after = (await statesOf(s.agent)).services.find((x) => x.service === 'orders');
    assert.equal(after?.active, false);
    assert.match(after?.reason ?? '', /measuring/);
  });

  it('ends by itself when renewals recover', async () => {
    const s = await scenario(true);
    const orders = await s.register('orders', 4);
    await s.runTo(60, () => orders.map((id) => [id, 'UP'] as const));
    await s.runTo(120, () => [[orders[0]!, 'UP']]);
    assert.equal((await statesOf(s.agent)).services[0]?.active, true);
    // Every instance renews again from 150 s (their leases had lapsed: renewing revives them).
    await s.runTo(240, () => orders.map((id) => [id, 'UP'] as const));
    const state = (await statesOf(s.agent)).services[0];
    assert.equal(state?.active, false);
    assert.equal(state?.renewalsLastMinute, 8);
    assert.ok(
      s.logs.some((l) => l.level === 'info' && /self-preservation ended/.test(l.msg)),
      'the end is logged',
    );
    assert.ok(orders.every((id) => s.exists(id)));
    assert.ok(orders.every((id) => leaseCheck(s.agent, id)?.status === 'passing'));
    assert.match(
      await metricsText(s.agent),
      /^meshwork_eureka_self_preservation_active\{service="orders"\} 0$/m,
    );
  });
});

describe('Eureka self-preservation routes under ACLs (--acl-default-policy deny)', () => {
  it('the state takes operator read, the reset operator write', async () => {
    const agent = await startTestAgent({
      flags: { acl: { enabled: true, defaultPolicy: 'deny' } },
    });
    current = agent;
    const management = await bootstrapAcl(agent.url);
    const tokens = {
      read: await tokenWithRules(agent.url, management, 'operator-read', 'operator = "read"'),
      write: await tokenWithRules(agent.url, management, 'operator-write', 'operator = "write"'),
    };
    const as = (token?: string): Record<string, string> =>
      token === undefined ? {} : { 'x-consul-token': token };
    const state = (token?: string) =>
      http(agent.url, 'GET', '/api/v1/eureka/self-preservation', undefined, as(token));
    const reset = (token?: string) =>
      http(agent.url, 'POST', '/api/v1/eureka/self-preservation/reset', undefined, as(token));
    assert.equal((await state()).status, 403);
    assert.equal((await state(tokens.read)).status, 200);
    assert.deepEqual((await state(tokens.read)).body, { enabled: false, services: [] });
    assert.equal((await reset()).status, 403);
    assert.equal((await reset(tokens.read)).status, 403);
    const ok = await reset(tokens.write);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body, { service: null, evicted: [] });
  });
});
