import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isMeshError } from '../../../src/core/errors.js';
import { gatewayServiceAccount, resolveGatewayOptions } from '../../../src/gateway/options.js';

describe('resolveGatewayOptions: mesh mode', () => {
  it('defaults to standalone, named meshwork-gateway in default, data under ./.meshwork/gateway', () => {
    const o = resolveGatewayOptions({});
    assert.equal(o.mesh, false);
    assert.equal(o.name, 'meshwork-gateway');
    assert.equal(o.namespace, 'default');
    assert.equal(o.dataDir, './.meshwork/gateway');
  });

  it('reads mesh, name, namespace and dataDir from env, flags over env', () => {
    const o = resolveGatewayOptions({
      env: {
        MESHWORK_GATEWAY__MESH: 'true',
        MESHWORK_GATEWAY__NAME: 'edge',
        MESHWORK_GATEWAY__NAMESPACE: 'shop',
        MESHWORK_GATEWAY__DATA_DIR: '/var/lib/gw',
      },
      flags: { name: 'edge-2' },
    });
    assert.deepEqual(
      [o.mesh, o.name, o.namespace, o.dataDir],
      [true, 'edge-2', 'shop', '/var/lib/gw'],
    );
  });

  it('refuses mesh with routes, naming both', () => {
    assert.throws(
      () =>
        resolveGatewayOptions({
          flags: { mesh: true, routes: [{ service: 'web' }] },
        }),
      (err: unknown) =>
        isMeshError(err, 'MESHWORK_ERR_CONFIG_INVALID') &&
        /routes: not allowed with mesh \(--mesh\)/.test(err.message),
    );
  });

  it('refuses a name that is not a DNS name, naming the field', () => {
    assert.throws(
      () => resolveGatewayOptions({ flags: { name: 'Bad Name' } }),
      (err: unknown) => isMeshError(err) && /name: must be a DNS name/.test(err.message),
    );
  });
});

describe('resolveGatewayOptions: mesh mTLS (issue 20)', () => {
  it('defaults to mtls auto, a 5 s start timeout and the service account of its name', () => {
    const o = resolveGatewayOptions({});
    assert.deepEqual(
      [o.mtls, o.mtlsStartTimeoutMs, gatewayServiceAccount(o)],
      ['auto', 5_000, 'meshwork-gateway'],
    );
    const edge = resolveGatewayOptions({ flags: { mesh: true, name: 'edge' } });
    assert.equal(gatewayServiceAccount(edge), 'edge');
    const set = resolveGatewayOptions({ flags: { name: 'edge', serviceAccount: 'edge-sa' } });
    assert.equal(gatewayServiceAccount(set), 'edge-sa');
  });

  it('wants a service account when the name is not a service name (mesh mode)', () => {
    assert.throws(
      () => resolveGatewayOptions({ flags: { mesh: true, name: 'edge.example.com' } }),
      /serviceAccount: required when the name "edge\.example\.com" is not a service name/,
    );
    const o = resolveGatewayOptions({
      flags: { mesh: true, name: 'edge.example.com', serviceAccount: 'edge' },
    });
    assert.equal(gatewayServiceAccount(o), 'edge');
  });

  it('reads mtls, mtlsStartTimeoutMs and serviceAccount from the file, env over file, flags over env', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-options-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, 'mtls: off\nmtlsStartTimeoutMs: 100\nserviceAccount: from-file\n');
    const fromFile = resolveGatewayOptions({ file });
    assert.deepEqual(
      [fromFile.mtls, fromFile.mtlsStartTimeoutMs, fromFile.serviceAccount],
      ['off', 100, 'from-file'],
    );
    const env = {
      MESHWORK_GATEWAY__MTLS: 'auto',
      MESHWORK_GATEWAY__MTLS_START_TIMEOUT_MS: '2500',
      MESHWORK_GATEWAY__SERVICE_ACCOUNT: 'edge-gateway',
    };
    const fromEnv = resolveGatewayOptions({ file, env });
    assert.deepEqual(
      [fromEnv.mtls, fromEnv.mtlsStartTimeoutMs, fromEnv.serviceAccount],
      ['auto', 2_500, 'edge-gateway'],
    );
    const fromFlags = resolveGatewayOptions({
      file,
      env,
      flags: { mtls: 'off', mtlsStartTimeoutMs: 0, serviceAccount: 'edge-2' },
    });
    assert.deepEqual(
      [fromFlags.mtls, fromFlags.mtlsStartTimeoutMs, fromFlags.serviceAccount],
      ['off', 0, 'edge-2'],
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a bad mtls, start timeout and service account, listing every problem at once', () => {
    assert.throws(
      () =>
        resolveGatewayOptions({
          env: { MESHWORK_GATEWAY__MTLS_START_TIMEOUT_MS: 'soon' },
          flags: { mtls: 'on', serviceAccount: 'Edge_Gateway' },
        }),
      (err: unknown) => {
        assert.ok(isMeshError(err, 'MESHWORK_ERR_CONFIG_INVALID'));
        assert.match(err.message, /mtls: must be auto or off/);
        assert.match(
          err.message,
          /MESHWORK_GATEWAY__MTLS_START_TIMEOUT_MS: must be a whole number/,
        );
        assert.match(err.message, /serviceAccount: must be 1-63 lowercase letters/);
        return true;
      },
    );
    assert.throws(
      () => resolveGatewayOptions({ flags: { mtlsStartTimeoutMs: 600_001 } }),
      (err: unknown) => isMeshError(err) && /mtlsStartTimeoutMs/.test(err.message),
    );
  });
});

describe('resolveGatewayOptions: tracing', () => {
  it('is off by default at ratio 0.01; takes endpoint and ratio from env and flags', () => {
    const d = resolveGatewayOptions({});
    assert.equal(d.tracingEndpoint, undefined);
    assert.equal(d.tracingSampleRatio, 0.01);
    const o = resolveGatewayOptions({
      env: {
        MESHWORK_GATEWAY__TRACING_ENDPOINT: 'https://otel.example:4318/v1/traces',
        MESHWORK_GATEWAY__TRACING_SAMPLE_RATIO: '0.2',
      },
      flags: { tracingSampleRatio: '0' },
    });
    assert.equal(o.tracingEndpoint, 'https://otel.example:4318/v1/traces');
    assert.equal(o.tracingSampleRatio, 0);
  });

  it('refuses a bad endpoint and ratio, naming both', () => {
    assert.throws(
      () => resolveGatewayOptions({ flags: { tracingEndpoint: 'nope', tracingSampleRatio: '-1' } }),
      (err: unknown) =>
        isMeshError(err) &&
        /tracingEndpoint: must be a URL/.test(err.message) &&
        /tracingSampleRatio: must be a number from 0 to 1/.test(err.message),
    );
  });
});
