/** @module `meshwork agent`'s flags: each reaches its option (seen in the one error that lists every bad one). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { command } from '../../../../src/cli/commands/agent.js';
import { ERROR_CODES } from '../../../../src/core/errors.js';
import { refusal } from '../../../helpers/cli.js';

describe('agent command', () => {
  it('maps every config flag to its option key, dns ones under dns', async () => {
    const err = await refusal(command, [
      ...['--http', 'nowhere', '--data-dir', '', '--store', 'nope', '--node-name', 'Bad Name!'],
      ...['--log-level', 'loud', '--datacenter', 'Bad DC!', '--etcd-endpoints', 'a, ,b'],
      ...['--dns', 'nowhere', '--dns-domain', '..', '--dns-alt-domain', '..'],
      ...['--consul-legacy-verbs', 'true'],
      ...['--https', 'nowhere', '--tls-cert-file', '', '--tls-key-file', '', '--tls-ca-file', ''],
    ]);
    assert.equal(err.code, ERROR_CODES.CONFIG_INVALID);
    assert.equal(
      err.message,
      [
        'invalid configuration:',
        '  http: must be host:port (e.g. 127.0.0.1:8500) or "off"',
        '  http: port must be 0-65535',
        '  https: must be host:port (e.g. 127.0.0.1:8501) or "off"',
        '  https: port must be 0-65535',
        '  tls.certFile: Too small: expected string to have >=1 characters',
        '  tls.keyFile: Too small: expected string to have >=1 characters',
        '  tls.caFile: Too small: expected string to have >=1 characters',
        '  dataDir: Too small: expected string to have >=1 characters',
        '  store: Invalid option: expected one of "sqlite"|"memory"|"etcd"',
        // Split on commas and trimmed, empty entries kept.
        '  etcdEndpoints[0]: must be a URL like http://127.0.0.1:2379',
        '  etcdEndpoints[1]: must be a URL like http://127.0.0.1:2379',
        '  etcdEndpoints[2]: must be a URL like http://127.0.0.1:2379',
        '  logLevel: Invalid option: expected one of "error"|"warn"|"info"|"debug"|"silent"',
        '  nodeName: letters, digits, _ . -, at most 128',
        '  datacenter: lowercase letters, digits and hyphens',
        '  dns.listen: must be host:port (e.g. 127.0.0.1:8600) or "off"',
        '  dns.listen: port must be 0-65535',
        '  dns.domain: must be a DNS name such as "consul" or "meshwork.example"',
        '  dns.altDomain: must be a DNS name such as "consul" or "meshwork.example"',
      ].join('\n'),
    );
  });

  it('takes only true or false for --consul-legacy-verbs, as a usage error', async () => {
    const err = await refusal(command, ['--consul-legacy-verbs', 'maybe', '--http', 'nowhere']);
    assert.equal(err.code, ERROR_CODES.CLI_USAGE);
    assert.equal(err.message, '--consul-legacy-verbs takes true or false');
  });
});
