/** @module `meshwork sidecar`'s flags: each reaches its option (seen in the one error that lists every bad one). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PassThrough } from 'node:stream';
import { command } from '../../../../src/cli/commands/sidecar.js';
import { main } from '../../../../src/cli/main.js';
import { ERROR_CODES } from '../../../../src/core/errors.js';
import { refusal } from '../../../helpers/cli.js';

describe('sidecar command', () => {
  it('maps every config flag to its option key, repeatable flags included', async () => {
    const err = await refusal(command, [
      ...['--service', 'Bad_Name', '--app-port', '0', '--app-health', 'x'],
      ...['--inbound', 'a', '--outbound', 'b', '--admin', 'c', '--registry', ' , '],
      ...['--upstream', 'p=1', '--upstream', 'q', '--meta', '=x', '--tag', ''],
      ...['--namespace', 'N', '--log-level', 'loud', '--address', '', '--data-dir', ''],
    ]);
    assert.equal(err.code, ERROR_CODES.CONFIG_INVALID);
    const lines = err.message
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(':')[0]);
    assert.deepEqual(
      [...new Set(lines)],
      [
        'service',
        'namespace',
        'appPort',
        'appHealth',
        'inbound',
        'outbound',
        'upstreams[0]',
        'upstreams[1]',
        'admin',
        'address',
        'registry',
        'dataDir',
        'meta[0]',
        'tags[0]',
        'logLevel',
      ],
    );
  });

  it('takes everything after "--" as the app command, and refuses stray arguments', async () => {
    const stray = await refusal(command, ['--service', 'a', 'node', 'app.js']);
    assert.equal(stray.code, ERROR_CODES.CLI_USAGE);
    assert.match(stray.message, /unexpected argument "node" \(the app's command goes after "--"\)/);
    const empty = await refusal(command, ['--service', 'a', '--app-port', '1', '--']);
    assert.equal(empty.code, ERROR_CODES.CLI_USAGE);
    // The app's own flags after "--" are not the sidecar's: only --app-port's problem shows.
    const app = await refusal(command, [
      '--service',
      'a',
      '--app-port',
      'x',
      '--',
      'node',
      '--inspect',
    ]);
    assert.equal(app.code, ERROR_CODES.CONFIG_INVALID);
    assert.match(
      app.message,
      /^invalid configuration:\n {2}appPort: must be a port number 1-65535$/,
    );
  });

  it('leaves a --help after "--" to the app', async () => {
    const stderr = new PassThrough();
    const stdout = new PassThrough();
    let err = '';
    let out = '';
    stderr.on('data', (d: Buffer) => (err += d.toString()));
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await main(['sidecar', '--service', 'a', '--', 'app', '--help'], {
      stdout,
      stderr,
      env: {},
    });
    assert.equal(code, 2);
    assert.equal(out, '');
    assert.match(err, /appPort: required/);
  });
});
