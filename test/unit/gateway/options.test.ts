import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMeshError } from '../../../src/core/errors.js';
import { resolveGatewayOptions } from '../../../src/gateway/options.js';

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
