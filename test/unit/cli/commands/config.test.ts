/** @module `meshwork config validate --sidecar|--gateway`: the options resolved as the command would. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { command } from '../../../../src/cli/commands/config.js';
import { ERROR_CODES } from '../../../../src/core/errors.js';
import { refusal } from '../../../helpers/cli.js';

describe('config command', () => {
  it('validates a sidecar config with --sidecar, env included, and prints it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-sidecar-'));
    const file = join(dir, 'sidecar.yaml');
    writeFileSync(file, 'service: orders\nupstreams: ["payments=127.0.0.1:9191"]\nmtls: off\n');
    const stdout = new PassThrough();
    let out = '';
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await command.run(['validate', '--sidecar', '--config', file, '--print'], {
      stdout,
      stderr: new PassThrough(),
      env: { MESHWORK_SIDECAR__APP_PORT: '8081', MESHWORK_SIDECAR__TOKEN: 's3cret-token' },
    });
    assert.equal(code, 0);
    const printed = JSON.parse(out) as {
      appPort: number;
      upstreams: unknown;
      mtls: string;
      token: string;
    };
    assert.equal(printed.appPort, 8081);
    assert.equal(printed.mtls, 'off');
    // issue 20: the token is a secret, shown as set but never printed
    assert.equal(printed.token, '(set)');
    assert.doesNotMatch(out, /s3cret-token/);
    assert.deepEqual(printed.upstreams, [{ service: 'payments', listen: '127.0.0.1:9191' }]);
  });

  it('validates a gateway config with --gateway and prints it, its token as set and mTLS keys included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-gateway-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, 'mesh: true\nmtls: off\nserviceAccount: edge-gateway\n');
    const stdout = new PassThrough();
    let out = '';
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await command.run(['validate', '--gateway', '--config', file, '--print'], {
      stdout,
      stderr: new PassThrough(),
      env: { MESHWORK_GATEWAY__TOKEN: 's3cret-token' },
    });
    assert.equal(code, 0);
    const printed = JSON.parse(out) as Record<string, unknown>;
    assert.deepEqual(
      [printed.mesh, printed.mtls, printed.mtlsStartTimeoutMs, printed.serviceAccount],
      [true, 'off', 5_000, 'edge-gateway'],
    );
    assert.equal(printed.token, '(set)');
    assert.doesNotMatch(out, /s3cret-token/);
  });

  it('lists every problem of a bad sidecar config', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-sidecar-'));
    const file = join(dir, 'sidecar.yaml');
    writeFileSync(file, 'service: Orders\nappPort: 0\nbogus: 1\n');
    const err = await refusal(command, ['validate', '--sidecar', '--config', file]);
    assert.equal(err.code, ERROR_CODES.CONFIG_INVALID);
    assert.match(err.message, /service: must be 1-63 lowercase/);
    assert.match(err.message, /appPort: must be a port number 1-65535/);
    assert.match(err.message, /bogus: unknown key/);
  });
});
