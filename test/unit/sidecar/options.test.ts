/** @module Sidecar options: precedence, SERVICE=HOST:PORT and KEY=VALUE forms, every problem listed. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ERROR_CODES, isMeshError } from '../../../src/core/errors.js';
import {
  registeredAddress,
  resolveSidecarOptions,
  type SidecarOptions,
} from '../../../src/sidecar/options.js';

function problemsOf(input: Parameters<typeof resolveSidecarOptions>[0]): string[] {
  try {
    resolveSidecarOptions(input);
  } catch (err) {
    assert.ok(isMeshError(err, ERROR_CODES.CONFIG_INVALID), String(err));
    return err.details?.problems as string[];
  }
  return assert.fail('should throw');
}

describe('sidecar options', () => {
  it('takes defaults < file < env < flags, the health section key by key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidecar-opts-'));
    const file = join(dir, 'sidecar.yaml');
    writeFileSync(
      file,
      'service: orders\nappPort: 8081\nhealth: { intervalMs: 2000, successesBeforePassing: 2 }\nupstreams: [{ service: payments, listen: "127.0.0.1:9191" }]\nmeta: { version: v1 }\n',
    );
    const o = resolveSidecarOptions({
      file,
      env: { MESHWORK_SIDECAR__HEALTH_INTERVAL_MS: '3000', MESHWORK_SIDECAR__APP_PORT: '8082' },
      flags: { appPort: 8083, tags: ['blue'] },
    });
    assert.equal(o.service, 'orders');
    assert.equal(o.appPort, 8083);
    assert.equal(o.health.intervalMs, 3000);
    assert.equal(o.health.successesBeforePassing, 2);
    assert.equal(o.health.failuresBeforeCritical, 3);
    assert.deepEqual(o.upstreams, [{ service: 'payments', listen: '127.0.0.1:9191' }]);
    assert.deepEqual(o.meta, { version: 'v1' });
    assert.deepEqual(o.tags, ['blue']);
    assert.equal(o.inbound, '0.0.0.0:15006');
    assert.equal(o.dataDir, './.meshwork/sidecar-orders');
    assert.ok(Object.isFrozen(o.health));
  });

  it('reads SERVICE=HOST:PORT upstreams and KEY=VALUE meta from flags and env', () => {
    const o = resolveSidecarOptions({
      env: { MESHWORK_SIDECAR__UPSTREAMS: 'users=127.0.0.1:9001, payments=127.0.0.1:9002' },
      flags: { service: 'orders', appPort: 1, meta: ['version=v2', 'zone=a=b'] },
    });
    assert.deepEqual(o.upstreams, [
      { service: 'users', listen: '127.0.0.1:9001' },
      { service: 'payments', listen: '127.0.0.1:9002' },
    ]);
    assert.deepEqual(o.meta, { version: 'v2', zone: 'a=b' });
  });

  it('lists every problem at once', () => {
    assert.deepEqual(
      problemsOf({
        env: { MESHWORK_SIDECAR__APP_PORT: 'x' },
        flags: {
          inbound: 'nowhere',
          appHealth: 'healthz',
          upstreams: ['payments', 'users=127.0.0.1:99999', 'a=127.0.0.1:15001'],
          meta: ['=v', 'ok=1'],
          registry: [],
        },
      }),
      [
        'MESHWORK_SIDECAR__APP_PORT: must be a whole number',
        'service: Invalid input: expected string, received undefined',
        'appPort: required: the port the app listens on (--app-port)',
        'appHealth: must be a path starting with "/"',
        'inbound: must be host:port (e.g. 127.0.0.1:15001)',
        'inbound: port must be 0-65535',
        'upstreams[0]: "payments": must be SERVICE=HOST:PORT with a service name before "="',
        'upstreams[1]: "users=127.0.0.1:99999": port must be 0-65535',
        'registry: Too small: expected array to have >=1 items',
        'meta[0]: "=v": must be KEY=VALUE, the key of letters, digits, _ and -',
      ],
    );
  });

  it('takes --mtls auto|off (default auto) and a token; refuses another mode, naming the field', () => {
    const base = { service: 'orders', appPort: 8081 };
    assert.equal(resolveSidecarOptions({ flags: base }).mtls, 'auto');
    assert.equal(resolveSidecarOptions({ flags: base }).token, undefined);
    const o = resolveSidecarOptions({
      flags: base,
      env: { MESHWORK_SIDECAR__MTLS: 'off', MESHWORK_SIDECAR__TOKEN: 't0ken' },
    });
    assert.equal(o.mtls, 'off');
    assert.equal(o.token, 't0ken');
    assert.deepEqual(problemsOf({ flags: { ...base, mtls: 'strict', token: '' } }), [
      'mtls: must be auto or off',
      'token: must not be empty',
    ]);
  });

  it('takes the tracing endpoint and ratio from file, env and flags (default off, 0.01)', () => {
    const base = { service: 'orders', appPort: 8081 };
    const d = resolveSidecarOptions({ flags: base });
    assert.equal(d.tracingEndpoint, undefined);
    assert.equal(d.tracingSampleRatio, 0.01);
    const dir = mkdtempSync(join(tmpdir(), 'sidecar-opts-'));
    const file = join(dir, 'sidecar.yaml');
    writeFileSync(file, 'tracingSampleRatio: 0.25\n');
    assert.equal(resolveSidecarOptions({ file, flags: base }).tracingSampleRatio, 0.25);
    const o = resolveSidecarOptions({
      file,
      env: {
        MESHWORK_SIDECAR__TRACING_ENDPOINT: 'http://127.0.0.1:4318/v1/traces',
        MESHWORK_SIDECAR__TRACING_SAMPLE_RATIO: '.5',
      },
      flags: base,
    });
    assert.equal(o.tracingEndpoint, 'http://127.0.0.1:4318/v1/traces');
    assert.equal(o.tracingSampleRatio, 0.5);
    assert.equal(
      resolveSidecarOptions({ flags: { ...base, tracingSampleRatio: '1' } }).tracingSampleRatio,
      1,
    );
  });

  it('refuses a bad tracing endpoint and ratio, listing both', () => {
    const base = { service: 'orders', appPort: 8081 };
    assert.deepEqual(
      problemsOf({ flags: { ...base, tracingEndpoint: 'ftp://x/v1', tracingSampleRatio: '2' } }),
      [
        'tracingEndpoint: must be an http:// or https:// URL',
        'tracingSampleRatio: must be a number from 0 to 1, e.g. 0.01',
      ],
    );
    assert.deepEqual(
      problemsOf({
        flags: base,
        env: {
          MESHWORK_SIDECAR__TRACING_ENDPOINT: 'collector:4318',
          MESHWORK_SIDECAR__TRACING_SAMPLE_RATIO: '1%',
        },
      }),
      [
        'tracingEndpoint: must be an http:// or https:// URL',
        'tracingSampleRatio: must be a number from 0 to 1, e.g. 0.01',
      ],
    );
  });

  it('takes the access log target and sample rate (default stdout, 0.1); refuses a rate out of 0..1', () => {
    const base = { service: 'orders', appPort: 8081 };
    const d = resolveSidecarOptions({ flags: base });
    assert.equal(d.accessLog, 'stdout');
    assert.equal(d.accessLogSample, 0.1);
    const o = resolveSidecarOptions({
      flags: { ...base, accessLog: '/var/log/a.log' },
      env: { MESHWORK_SIDECAR__ACCESS_LOG_SAMPLE: '0.25', MESHWORK_SIDECAR__ACCESS_LOG: 'off' },
    });
    assert.equal(o.accessLog, '/var/log/a.log');
    assert.equal(o.accessLogSample, 0.25);
    assert.deepEqual(problemsOf({ flags: { ...base, accessLog: '', accessLogSample: 1.5 } }), [
      'accessLog: must be stdout, off or a file path',
      'accessLogSample: must be a number from 0 to 1',
    ]);
    assert.deepEqual(problemsOf({ flags: { ...base, accessLogSample: 'half' } }), [
      'accessLogSample: must be a number from 0 to 1',
    ]);
  });

  it('takes --istio-metrics on|off (default on) and names a bad value', () => {
    const base = { service: 'orders', appPort: 8081 };
    assert.equal(resolveSidecarOptions({ flags: base }).istioMetrics, 'on');
    const off = resolveSidecarOptions({
      flags: base,
      env: { MESHWORK_SIDECAR__ISTIO_METRICS: 'off' },
    });
    assert.equal(off.istioMetrics, 'off');
    assert.deepEqual(problemsOf({ flags: { ...base, istioMetrics: 'yes' } }), [
      'istioMetrics: must be on or off',
    ]);
  });

  it('refuses two listeners on one port and an upstream named twice', () => {
    assert.deepEqual(
      problemsOf({
        flags: {
          service: 'orders',
          appPort: 8081,
          admin: '127.0.0.1:15001',
          upstreams: ['a=127.0.0.1:9000', 'a=127.0.0.1:9001'],
          health: { intervalMs: 1000, timeoutMs: 2000 },
        },
      }),
      [
        'admin: port 15001 is taken by outbound',
        'upstreams[1].service: "a" is listed twice',
        'health.timeoutMs: must not exceed health.intervalMs',
      ],
    );
  });

  it('registers the inbound host, or 127.0.0.1 when inbound binds every interface', () => {
    const base = { service: 'a', appPort: 1 };
    const addr = (flags: Record<string, unknown>): string =>
      registeredAddress(resolveSidecarOptions({ flags: { ...base, ...flags } }) as SidecarOptions);
    assert.equal(addr({}), '127.0.0.1');
    assert.equal(addr({ inbound: '[::]:15006' }), '127.0.0.1');
    assert.equal(addr({ inbound: '10.1.2.3:15006' }), '10.1.2.3');
    assert.equal(addr({ address: 'node-7.local' }), 'node-7.local');
  });

  // Property: an upstream written SERVICE=HOST:PORT parses to its parts, or is refused naming it.
  it('parses any SERVICE=HOST:PORT string to its parts or refuses it with its index', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (raw) => {
        try {
          const o = resolveSidecarOptions({
            flags: { service: 'a', appPort: 1, upstreams: [raw] },
          });
          const [u] = o.upstreams;
          assert.equal(`${u?.service}=${u?.listen}`, raw);
        } catch (err) {
          assert.ok(isMeshError(err, ERROR_CODES.CONFIG_INVALID));
          const problems = err.details?.problems as string[];
          assert.ok(
            problems.every((p) => p.startsWith('upstreams[0]')),
            problems.join('\n'),
          );
        }
      }),
    );
  });
});
