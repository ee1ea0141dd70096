/**
 * Issue 20: `--registry https://...` in the CLI, the sidecar and the gateway, against a real agent
 * process that serves its API over HTTPS only (certificates from the real openssl): the CLI's
 * client commands with --registry-ca (and $MESHWORK_CACERT), a sidecar that registers its app and
 * takes its snapshots over HTTPS, a gateway that routes to it from a discovery cache fed over
 * HTTPS; a wrong CA refused with a clear error; client certificates for an agent that requires
 * them; bad files exit 2 naming the flag.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import {
  runCli,
  spawnGateway,
  spawnSidecar,
  stopSidecars,
  FAST_SIDECAR_HEALTH,
  type GatewayProcess,
} from '../helpers/cli.js';
import { useTlsAgent } from '../helpers/tls-certs.js';
import { until } from '../helpers/until.js';

describe('--registry https://... (agent with --http off)', () => {
  const suite = useTlsAgent(() => ['--http', 'off']);
  const dir = mkdtempSync(join(tmpdir(), 'registry-tls-'));
  let app: Server;
  let gateway: GatewayProcess | undefined;

  before(async () => {
    app = createServer((req, res) => res.end(`app saw ${req.url ?? ''}`));
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    gateway?.child.kill('SIGTERM');
    await Promise.all([gateway?.exited, stopSidecars()]);
    await new Promise((r) => app.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  /** `meshwork ...args --registry <https url> --registry-ca <ca>`. */
  const cli = (...args: string[]) =>
    runCli([...args, '--registry', suite.agent.url, '--registry-ca', suite.pki.caFile]);

  it('the CLI registers and lists over HTTPS with --registry-ca, or $MESHWORK_CACERT', async () => {
    const reg = await cli(
      'register',
      '--service',
      'cli-svc',
      '--address',
      '127.0.0.1',
      '--port',
      '9',
    );
    assert.equal(reg.code, 0, reg.stderr);
    const listed = await cli('services', '--json');
    assert.equal(listed.code, 0, listed.stderr);
    const names = (JSON.parse(listed.stdout) as { services: { name: string }[] }).services;
    assert.ok(names.some((s) => s.name === 'cli-svc'));
    const byEnv = await runCli(['services'], {
      MESHWORK_ADDR: suite.agent.url,
      MESHWORK_CACERT: suite.pki.caFile,
    });
    assert.equal(byEnv.code, 0, byEnv.stderr);
    assert.match(byEnv.stdout, /cli-svc/);
  });

  it('the CLI refuses an agent whose certificate another CA signed, saying so', async () => {
    const r = await runCli([
      'services',
      '--registry',
      suite.agent.url,
      '--registry-ca',
      suite.pki.otherCaFile,
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach the registry at https:\/\/127\.0\.0\.1:\d+/);
    assert.match(
      r.stderr,
      /unable to verify the first certificate \(TLS: the agent's certificate is not signed by a CA this client trusts: give the CA that signed it/,
    );
    assert.match(r.stderr, /MESHWORK_ERR_CLIENT_REQUEST_FAILED/);
    // Without any CA the system's roots are used: they do not know the test CA either.
    const noCa = await runCli(['services', '--registry', suite.agent.url]);
    assert.equal(noCa.code, 1);
    assert.match(noCa.stderr, /certificate/);
  });

  it('the CLI exits 2 naming the flag of a bad TLS file', async () => {
    const absent = join(dir, 'absent.pem');
    const r = await runCli(['services', '--registry', suite.agent.url, '--registry-ca', absent]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`--registry-ca: cannot read ${absent}: ENOENT`));
    const key = await runCli([
      'services',
      '--registry',
      suite.agent.url,
      '--registry-cert',
      suite.pki.client.certFile,
      '--registry-key',
      suite.pki.server.keyFile,
    ]);
    assert.equal(key.code, 2);
    assert.match(
      key.stderr,
      /--registry-key: .* the key does not match the certificate of --registry-cert/,
    );
    const env = await runCli(['services'], {
      MESHWORK_ADDR: suite.agent.url,
      MESHWORK_CACERT: absent,
    });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /MESHWORK_CACERT: cannot read/);
  });

  it('a sidecar registers its app and takes its snapshot over HTTPS; a gateway routes to it', async () => {
    const appPort = (app.address() as AddressInfo).port;
    const sidecar = await spawnSidecar(
      [
        ...['--service', 'orders', '--app-port', String(appPort)],
        ...['--registry', suite.agent.url, '--registry-ca', suite.pki.caFile],
        ...['--data-dir', join(dir, 'orders')],
      ],
      FAST_SIDECAR_HEALTH,
    );
    await until(
      async () => (await request(`${sidecar.adminUrl}/ready`)).statusCode === 200,
      20_000,
      'the sidecar ready (a snapshot from the agent)',
    );
    await until(
      async () => {
        const r = await cli('instances', 'orders', '--json');
        return r.code === 0 && /"status": "passing"/.test(r.stdout);
      },
      20_000,
      'orders registered and passing',
    );

    gateway = await spawnGateway([
      ...['--registry', suite.agent.url, '--registry-ca', suite.pki.caFile],
    ]);
    const body = await until(
      async () => {
        const r = await request(`${gateway?.url}/hello`, {
          headers: { host: 'orders.mesh.local' },
        });
        const text = await r.body.text();
        return r.statusCode === 200 ? text : undefined;
      },
      20_000,
      'orders reachable through the gateway',
    );
    assert.equal(body, 'app saw /hello');
  });

  it('the sidecar and the gateway exit 2 naming the flag of a bad TLS file', async () => {
    const absent = join(dir, 'absent.pem');
    const sc = await runCli([
      'sidecar',
      ...['--service', 'x', '--app-port', '1', '--registry', suite.agent.url],
      ...['--registry-ca', absent],
    ]);
    assert.equal(sc.code, 2);
    assert.match(sc.stderr, /registryCaFile \(--registry-ca\): cannot read .*absent\.pem: ENOENT/);
    const gw = await runCli([
      'gateway',
      '--registry',
      'http://127.0.0.1:1',
      '--registry-ca',
      suite.pki.caFile,
    ]);
    assert.equal(gw.code, 2);
    assert.match(gw.stderr, /registryCaFile: TLS files are set, but no registry URL is https:\/\//);
  });
});

describe('--registry-cert/--registry-key (agent with --tls-verify-incoming)', () => {
  const suite = useTlsAgent((pki) => ['--tls-ca-file', pki.caFile, '--tls-verify-incoming']);

  it('the CLI is refused without a client certificate, and served with one', async () => {
    const url = suite.agent.httpsUrl ?? '';
    const without = await runCli([
      'services',
      '--registry',
      url,
      '--registry-ca',
      suite.pki.caFile,
    ]);
    assert.equal(without.code, 1);
    assert.match(without.stderr, /cannot reach the registry at https:/);
    assert.match(
      without.stderr,
      /an agent that requires client certificates closes connections without one/,
    );
    const withCert = await runCli([
      'services',
      '--json',
      ...['--registry', url, '--registry-ca', suite.pki.caFile],
      ...['--registry-cert', suite.pki.client.certFile, '--registry-key', suite.pki.client.keyFile],
    ]);
    assert.equal(withCert.code, 0, withCert.stderr);
    assert.deepEqual(JSON.parse(withCert.stdout), { index: 1, services: [] });
    const byEnv = await runCli(['services'], {
      MESHWORK_ADDR: url,
      MESHWORK_CACERT: suite.pki.caFile,
      MESHWORK_CLIENT_CERT: suite.pki.client.certFile,
      MESHWORK_CLIENT_KEY: suite.pki.client.keyFile,
    });
    assert.equal(byEnv.code, 0, byEnv.stderr);
  });
});
