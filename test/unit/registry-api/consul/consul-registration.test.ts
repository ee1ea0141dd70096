/** Consul definitions -> registrations: service and check definitions, refusals, duration floors. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CheckDefinition } from '../../../../src/core/types.js';
import { normalizeChecks } from '../../../../src/protocol/registration.js';
import {
  checkFromConsul,
  checkInputOf,
  registrationFromConsul,
} from '../../../../src/registry-api/consul/consul-registration.js';

const node = { nodeName: 'n1', datacenter: 'dc1', address: '127.0.0.1' };
const refused = (fn: () => unknown, text: RegExp) =>
  assert.throws(fn, (e: unknown) => text.test((e as Error).message));

describe('registrationFromConsul', () => {
  it('maps a Consul service definition, defaulting ID to Name and Address to the node', () => {
    const r = registrationFromConsul(
      { Name: 'web', Port: 0, Tags: ['x'], EnableTagOverride: true, Check: { TTL: 10_000 } },
      node,
    );
    assert.equal(r.id, 'web');
    assert.equal(r.address, '127.0.0.1');
    assert.equal(r.port, 0);
    assert.deepEqual(r.meta, { 'consul-registered': 'true', 'consul-enable-tag-override': 'true' });
    assert.equal(r.checks?.[0]?.id, 'service:web');
    assert.equal(r.checks?.[0]?.name, "Service 'web' check");
    assert.equal(r.checks?.[0]?.initialStatus, 'critical');
  });

  it('numbers several checks and maps HTTP checks with headers and thresholds', () => {
    const r = registrationFromConsul(
      {
        Name: 'web',
        ID: 'web-1',
        Checks: [
          {
            HTTP: 'http://10.0.0.1/h',
            Interval: 5000,
            Header: { a: ['1', '2'] },
            Method: 'HEAD',
            FailuresBeforeCritical: 3,
          },
          { TCP: '10.0.0.1:80', Interval: 1000, Status: 'passing' },
        ],
      },
      node,
    );
    const [h, t] = r.checks ?? [];
    assert.equal(h?.id, 'service:web-1:1');
    assert.deepEqual(h?.http, {
      url: 'http://10.0.0.1/h',
      method: 'HEAD',
      headers: { a: '1, 2' },
      tlsSkipVerify: false,
    });
    assert.equal(h?.failuresBeforeCritical, 3);
    assert.equal(h?.failuresBeforeWarning, 3);
    assert.equal(t?.id, 'service:web-1:2');
    assert.equal(t?.initialStatus, 'passing');
  });

  it('refuses what Consul refuses, with its messages', () => {
    refused(() => registrationFromConsul({}, node), /^Missing service name$/);
    refused(() => registrationFromConsul({ Name: 'web', Port: 70000 }, node), /port/);
    refused(
      () => registrationFromConsul({ Name: 'web', Weights: { Warning: -1 } }, node),
      /^Invalid Weights/,
    );
    refused(
      () => registrationFromConsul({ Name: 'web', ID: 'bad id' }, node),
      /^Invalid service ID/,
    );
    refused(
      () => registrationFromConsul({ Name: 'web', Check: { HTTP: 'ftp://x', Interval: 1 } }, node),
      /http or https/,
    );
    refused(
      () =>
        registrationFromConsul({ Name: 'web', Check: { HTTP: 'not a url', Interval: 1 } }, node),
      /not a URL/,
    );
    refused(
      () => registrationFromConsul({ Name: 'web', Check: { TCP: 'nohost', Interval: 1000 } }, node),
      /^Invalid check: /,
    );
    refused(
      () => registrationFromConsul({ Name: 'web', Check: { TTL: 2 * 86_400_000 } }, node),
      /TTL must be at most/,
    );
    refused(
      () =>
        registrationFromConsul(
          {
            Name: 'web',
            Check: { TTL: 1000, FailuresBeforeWarning: 3, FailuresBeforeCritical: 2 },
          },
          node,
        ),
      /can't be higher/,
    );
  });
});

describe('checkFromConsul', () => {
  it('refuses the kinds Meshwork does not run', () => {
    for (const k of ['GRPC', 'UDP', 'H2PING', 'AliasService', 'Script', 'OSService']) {
      refused(
        () => checkFromConsul({ [k]: 'x', Interval: 1000 }, { serviceId: 's', serviceName: 's' }),
        /not supported/,
      );
    }
  });

  it('refuses two kinds in one check, even when one of them is an empty string', () => {
    const ctx = { serviceId: '', serviceName: '' };
    refused(
      () => checkFromConsul({ HTTP: 'http://x/', TCP: 'x:1', Interval: 1000 }, ctx),
      /HTTP and TCP cannot both be specified/,
    );
    refused(
      () => checkFromConsul({ TCP: 'x:1', GRPC: 'x:2', Interval: 1000 }, ctx),
      /TCP and GRPC cannot both be specified/,
    );
    // Found by the property test of node-check bodies: an empty HTTP hid the GRPC.
    refused(() => checkFromConsul({ HTTP: '', GRPC: 'x:2', TTL: 5000 }, ctx), /not supported/);
  });
});

// Issue 16: `"Interval": "1ms"` made the agent probe a URL 800 times a second. Consul raises an
// Interval below 1 s and a DeregisterCriticalServiceAfter below 1 min to its minimum, with a
// warning; the adapter does the same with the agent's floors, and tells who counts them.
describe('checkFromConsul floors', () => {
  const floors = {
    intervalMs: 1000,
    timeoutMs: 100,
    ttlMs: 1000,
    deregisterCriticalAfterMs: 60_000,
  };
  const raisedWith = (body: Record<string, unknown>) => {
    const raised: [string, number, number][] = [];
    const check = checkFromConsul(body, {
      serviceId: 's',
      serviceName: 's',
      policy: { floors, maxChecks: 32, onRaised: (f, from, to) => raised.push([f, from, to]) },
    });
    return { check, raised };
  };

  it('raises each duration below its floor to the floor and reports it, and keeps the others', () => {
    const cases: [Record<string, unknown>, Record<string, number>, [string, number, number][]][] = [
      [
        { HTTP: 'http://x/', Interval: 1, Timeout: 1, DeregisterCriticalServiceAfter: 5000 },
        { intervalMs: 1000, timeoutMs: 100, deregisterCriticalAfterMs: 60_000 },
        [
          ['Interval', 1, 1000],
          ['Timeout', 1, 100],
          ['DeregisterCriticalServiceAfter', 5000, 60_000],
        ],
      ],
      [{ TTL: 5 }, { ttlMs: 1000 }, [['TTL', 5, 1000]]],
      // At the floor, and 0 where 0 means never (deregister) or the default (timeout): kept.
      [
        { TCP: 'x:1', Interval: 1000, Timeout: 0, DeregisterCriticalServiceAfter: 0 },
        { intervalMs: 1000, timeoutMs: 10_000, deregisterCriticalAfterMs: 0 },
        [],
      ],
    ];
    for (const [body, want, raises] of cases) {
      const r = raisedWith(body);
      for (const [k, v] of Object.entries(want))
        assert.equal((r.check as Record<string, unknown>)[k], v, `${JSON.stringify(body)} ${k}`);
      assert.deepEqual(r.raised.sort(), raises.sort());
    }
  });

  it('keeps a stored check below the floors at the floors when a re-registration keeps it', () => {
    const [stored] = normalizeChecks(
      [{ id: 'old', tcp: 'x:1', intervalMs: 1, timeoutMs: 1, deregisterCriticalAfterMs: 5 }],
      { intervalMs: 1, timeoutMs: 1, ttlMs: 1, deregisterCriticalAfterMs: 1 },
    );
    const kept = checkInputOf(stored as CheckDefinition, floors);
    assert.deepEqual(
      [kept.intervalMs, kept.timeoutMs, kept.deregisterCriticalAfterMs],
      [1000, 100, 60_000],
    );
    assert.deepEqual(normalizeChecks([kept], floors)[0]?.intervalMs, 1000);
  });

  it('still refuses an Interval of 0, as Consul does', () => {
    refused(() => raisedWith({ HTTP: 'http://x/', Interval: 0 }), /Interval must be > 0/);
  });

  it('caps the checks of a registration at the policy maxChecks', () => {
    const policy = { floors, maxChecks: 2 };
    const three = {
      Name: 'web',
      Checks: [1, 2, 3].map((n) => ({ CheckID: `c${n}`, TTL: 10_000 })),
    };
    refused(() => registrationFromConsul(three, node, policy), /at most 2 checks/);
  });
});
