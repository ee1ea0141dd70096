import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ERROR_CODES, isMeshError } from '../../../src/core/errors.js';
import { dockerConnection } from '../../../src/sync/docker-source.js';
import { command } from '../../../src/cli/commands/sync.js';
import { resolveSyncOptions, SYNC_ENV_VARS, syncSetName } from '../../../src/sync/options.js';

describe('sync options', () => {
  it('layers defaults < config file < env < flags, and freezes the result', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshwork-sync-'));
    try {
      const file = join(dir, 'sync.yaml');
      writeFileSync(
        file,
        'docker: tcp://10.0.0.1:2375\nnodeName: from-file\nlabelPrefix: sd.\naddress: 10.0.0.5\n',
      );
      const o = resolveSyncOptions({
        file,
        env: {
          MESHWORK_SYNC__NODE_NAME: 'from-env',
          MESHWORK_SYNC__REGISTRY: 'http://a:1,http://b:2',
        },
        flags: { labelPrefix: 'flag.' },
      });
      assert.equal(o.docker, 'tcp://10.0.0.1:2375');
      assert.equal(o.nodeName, 'from-env');
      assert.equal(o.labelPrefix, 'flag.');
      assert.equal(o.address, '10.0.0.5');
      assert.deepEqual(o.registry, ['http://a:1', 'http://b:2']);
      assert.equal(o.admin, 'off');
      assert.ok(Object.isFrozen(o));
      assert.equal(syncSetName('docker', o.nodeName), 'docker:from-env');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lists every problem in one CONFIG_INVALID', () => {
    try {
      resolveSyncOptions({
        env: { MESHWORK_SYNC__RETRY_MS: 'soon' },
        flags: { docker: 'docker.sock', nodeName: 'no spaces', admin: 'nowhere', extra: 1 },
      });
      assert.fail('accepted');
    } catch (err) {
      assert.ok(isMeshError(err, ERROR_CODES.CONFIG_INVALID));
      const problems = (err.details?.problems as string[]).join('\n');
      for (const name of ['MESHWORK_SYNC__RETRY_MS', 'docker', 'nodeName', 'admin', 'extra'])
        assert.match(problems, new RegExp(name));
    }
  });

  it("names every env var it reads in the command's help", () => {
    for (const name of SYNC_ENV_VARS) assert.ok(command.help.includes(name), name);
  });

  it('reads the Docker address as dockerode connection options', () => {
    assert.deepEqual(dockerConnection('unix:///var/run/docker.sock'), {
      socketPath: '/var/run/docker.sock',
    });
    assert.deepEqual(dockerConnection('tcp://10.0.0.1:2375'), {
      protocol: 'http',
      host: '10.0.0.1',
      port: 2375,
    });
    assert.deepEqual(dockerConnection('https://docker.example:2376'), {
      protocol: 'https',
      host: 'docker.example',
      port: 2376,
    });
  });
});
