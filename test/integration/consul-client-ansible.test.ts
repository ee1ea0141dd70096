/**
 * Issue 22: Ansible's community.general.consul_kv (Debian's `ansible`, which bundles the
 * collection; the module drives python-consul 0.7.1) against a real agent on port 0:
 * put (and put again, unchanged), get, delete (and delete again, unchanged), as a playbook
 * (test/fixtures/ansible-consul-kv.yml). `npm test` installs ansible when missing
 * (scripts/ensure-tools.sh ansible).
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { http } from '../helpers/agent.js';
import { usePlaybook } from '../helpers/ansible.js';

const PLAYBOOK = fileURLToPath(new URL('../fixtures/ansible-consul-kv.yml', import.meta.url));

describe('Ansible community.general.consul_kv against the Consul API', () => {
  const { agent, tasks, task } = usePlaybook(PLAYBOOK);

  it('runs every task of the playbook, none failed', () => {
    assert.deepEqual(
      tasks().map((t) => [t.name, t.result.failed ?? false]),
      [
        ['put', false],
        ['put the same value again', false],
        ['put another value', false],
        ['get', false],
        ['delete', false],
        ['get after delete', false],
        ['delete again', false],
      ],
    );
  });

  it('puts a key (changed), then the same value unchanged, then another value (changed)', () => {
    assert.equal(task('put').changed, true);
    assert.equal(task('put').data.Value, 'v1');
    assert.equal(task('put the same value again').changed, false);
    assert.equal(task('put another value').changed, true);
    assert.equal(task('put another value').data.Value, 'v2');
    assert.match(String(task('put').index), /^[1-9]\d*$/);
  });

  it('gets the value it put (state present without a value)', () => {
    const got = task('get');
    assert.equal(got.changed, false);
    assert.equal(got.data.Key, 'ansible/app/config');
    assert.equal(got.data.Value, 'v2');
  });

  it('deletes the key (changed), reads it as absent, and deletes again unchanged', async () => {
    assert.equal(task('delete').changed, true);
    const gone = await http(agent().url, 'GET', '/v1/kv/ansible/app/config');
    assert.equal(gone.status, 404, 'gone for every client');
    assert.equal(task('get after delete').data, null);
    assert.match(String(task('get after delete').index), /^[1-9]\d*$/);
    assert.equal(task('delete again').changed, false);
  });
});
