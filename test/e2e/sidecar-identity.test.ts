/**
 * @module `meshwork sidecar` and its certificate end to end (issue 20): a real agent process with
 * its CA, real sidecar processes. The leaf in `/config_dump` and `/metrics` (never the key, in
 * neither nor in the log), `meshwork ca rotate` followed by a running sidecar, `--mtls off`, and
 * a bad `--mtls` refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { http } from '../helpers/agent.js';
import { runCli, type AgentProcess } from '../helpers/cli.js';
import { MeshFixture } from '../helpers/mesh-fixture.js';
import { until } from '../helpers/until.js';

describe('meshwork sidecar: its certificate', () => {
  let mesh: MeshFixture;
  let agent: AgentProcess;
  before(async () => {
    mesh = await MeshFixture.start('sidecar-identity-e2e-');
    agent = mesh.agent;
  });
  after(async () => {
    await mesh?.stop();
  });

  const sidecar = (service: string, ...more: string[]) =>
    mesh.sidecar(service, { flags: more, env: { MESHWORK_SIDECAR__LOG_LEVEL: 'info' } });

  it('gets a leaf before taking traffic and follows meshwork ca rotate; the key shows nowhere', async () => {
    const orders = await sidecar('orders');
    try {
      const dump = async () => (await http(orders.adminUrl, 'GET', '/config_dump')).body;
      // The leaf is in force when the sidecar prints where it listens: no waiting.
      const first = (await dump()).mtls;
      assert.equal(first.state, 'on');
      assert.equal(first.spiffeId, 'spiffe://cluster.local/ns/default/sa/orders');
      assert.match(first.serial, /^[0-9a-f]+$/);
      const roots = (await http(agent.url, 'GET', '/api/v1/mesh/ca/roots')).body;
      assert.equal(first.rootId, roots.activeRootId);
      const metrics = (await http(orders.adminUrl, 'GET', '/metrics')).text;
      const expiry = Number(/^meshwork_sidecar_cert_expiry_seconds (\S+)$/m.exec(metrics)?.[1]);
      assert.ok(expiry > 23 * 3600 && expiry <= 24 * 3600 + 60, `${expiry}`);
      assert.match(metrics, /^meshwork_sidecar_cert_renewals_total\{result="error"\} 0$/m);

      const rotated = await runCli(['ca', 'rotate', '--overlap', '1h', '--registry', agent.url]);
      assert.equal(rotated.code, 0, rotated.stderr);
      const newRoot = (await http(agent.url, 'GET', '/api/v1/mesh/ca/roots')).body;
      assert.notEqual(newRoot.activeRootId, first.rootId);
      // Pushed in the snapshot, then a new leaf within the 5 s jitter.
      const second = await until(
        async () => {
          const m = (await dump()).mtls;
          return m.rootId === newRoot.activeRootId ? m : undefined;
        },
        20_000,
        'a leaf from the new root',
      );
      assert.notEqual(second.serial, first.serial);
      assert.match(
        (await http(orders.adminUrl, 'GET', '/metrics')).text,
        /^meshwork_sidecar_cert_renewals_total\{result="ok"\} 1$/m,
      );
      const everything = [
        JSON.stringify(await dump()),
        (await http(orders.adminUrl, 'GET', '/metrics')).text,
        orders.stdout(),
        orders.stderr(),
      ].join('\n');
      assert.doesNotMatch(everything, /PRIVATE KEY/);
      assert.match(orders.stderr(), /leaf certificate in force/);
    } finally {
      orders.child.kill('SIGTERM');
      assert.equal(await orders.exited, 0);
    }
  });

  it('with --mtls off asks the CA nothing and says so', async () => {
    const off = await sidecar('payments', '--mtls', 'off');
    try {
      const m = (await http(off.adminUrl, 'GET', '/config_dump')).body.mtls;
      assert.deepEqual(m, { state: 'off', reason: 'mtls: off' });
      assert.match(off.stderr(), /mTLS off \(--mtls off\)/);
    } finally {
      off.child.kill('SIGTERM');
      assert.equal(await off.exited, 0);
    }
  });

  it('refuses a bad --mtls, naming the field, exit 2', async () => {
    const r = await runCli(['sidecar', '--service', 'x', '--app-port', '1', '--mtls', 'strict']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /mtls: must be auto or off/);
  });
});
