/** @module `meshwork gateway`'s flags: each reaches its option (seen in the one error that lists every bad one). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { command } from '../../../../src/cli/commands/gateway.js';
import { ERROR_CODES } from '../../../../src/core/errors.js';
import { refusal } from '../../../helpers/cli.js';

describe('gateway command', () => {
  it('maps every config flag to its option key', async () => {
    const err = await refusal(command, [
      ...['--listen', 'nowhere', '--admin', 'nowhere', '--registry', ' , '],
      ...['--domain', '..', '--log-level', 'loud'],
    ]);
    assert.equal(err.code, ERROR_CODES.CONFIG_INVALID);
    assert.equal(
      err.message,
      [
        'invalid configuration:',
        '  listen: must be host:port (e.g. 127.0.0.1:8080)',
        '  listen: port must be 0-65535',
        '  admin: must be host:port (e.g. 127.0.0.1:8080)',
        '  admin: port must be 0-65535',
        '  registry: Too small: expected array to have >=1 items',
        '  domain: must be a DNS name or ""',
        '  logLevel: Invalid option: expected one of "error"|"warn"|"info"|"debug"|"silent"',
      ].join('\n'),
    );
  });

  it('maps --mtls, --mtls-start-timeout-ms and --service-account to their options (issue 20)', async () => {
    const err = await refusal(command, [
      ...['--mtls', 'on', '--mtls-start-timeout-ms', 'soon'],
      ...['--service-account', 'Edge_Gateway'],
    ]);
    assert.equal(err.code, ERROR_CODES.CONFIG_INVALID);
    const lines = err.message.split('\n');
    assert.equal(lines.length, 4, err.message);
    assert.ok(lines.includes('  mtls: must be auto or off'), err.message);
    assert.ok(
      lines.some((l) => l.startsWith('  mtlsStartTimeoutMs: ')),
      err.message,
    );
    assert.ok(
      lines.some((l) => l.startsWith('  serviceAccount: must be 1-63 ')),
      err.message,
    );
  });

  it('splits --registry on commas, trimmed, leaving out empty entries', async () => {
    const err = await refusal(command, ['--registry', 'x, ,y', '--listen', 'nowhere']);
    assert.match(err.message, /registry\[1\]: must be a URL/);
    assert.doesNotMatch(err.message, /registry\[2\]/);
  });
});
