/**
 * Issue 20: the Consul clients the suite already uses (the npm `consul` package 2.x and Debian's
 * python-consul 0.7.1), unmodified, against an agent that serves its API over HTTPS only and
 * requires client certificates, with each client's own CA and client certificate options.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';
import { makeTestPki, type TestPki } from '../helpers/tls-certs.js';

const SCRIPT = fileURLToPath(new URL('../fixtures/python-consul-tls.py', import.meta.url));
// Debian's package lives in Debian's python3; a pyenv/venv python3 on PATH would not see it.
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/**
 * The test's environment without the CONSUL_HTTP_* variables python-consul reads over its
 * arguments (even empty: CONSUL_HTTP_SSL="" means plain HTTP, CONSUL_HTTP_SSL_VERIFY="" no check).
 */
function pythonEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('CONSUL_HTTP_')),
  );
}

describe('Consul clients over HTTPS with client certificates', () => {
  let pki: TestPki;
  let agent: TestAgent;
  let host: string;
  let port: number;

  before(async () => {
    pki = makeTestPki();
    agent = await startTestAgent({
      http: 'off',
      flags: {
        https: '127.0.0.1:0',
        tls: {
          certFile: pki.server.certFile,
          keyFile: pki.server.keyFile,
          caFile: pki.caFile,
          verifyIncoming: true,
        },
      },
    });
    const u = new URL(agent.url);
    host = u.hostname;
    port = Number(u.port);
  });
  after(async () => {
    await agent.stop();
    pki.remove();
  });

  it('npm consul: secure with ca, cert and key registers and reads; refused without a certificate or with another CA', async () => {
    const pem = (f: string): string => readFileSync(f, 'utf8');
    const tls = {
      ca: pem(pki.caFile),
      cert: pem(pki.client.certFile),
      key: pem(pki.client.keyFile),
    };
    const consul = new Consul({ host, port, secure: true, ...tls } as ConstructorParameters<
      typeof Consul
    >[0]);
    await consul.agent.service.register({ name: 'node-tls', id: 'node-tls-1', port: 8443 });
    const services = (await consul.catalog.service.list()) as Record<string, string[]>;
    assert.deepEqual(Object.keys(services).sort(), ['consul', 'node-tls']);
    consul.destroy();

    const noCert = new Consul({ host, port, secure: true, ca: tls.ca } as ConstructorParameters<
      typeof Consul
    >[0]);
    await assert.rejects(noCert.catalog.service.list(), /alert certificate required/);
    noCert.destroy();
    const otherCa = new Consul({
      host,
      port,
      secure: true,
      ...tls,
      ca: pem(pki.otherCaFile),
    } as ConstructorParameters<typeof Consul>[0]);
    await assert.rejects(otherCa.catalog.service.list(), /certificate/);
    otherCa.destroy();
  });

  it('python-consul: scheme https, verify=<ca file>, cert=(cert, key); refused without a certificate or with another CA', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        PYTHON,
        [
          SCRIPT,
          host,
          String(port),
          pki.caFile,
          pki.client.certFile,
          pki.client.keyFile,
          pki.otherCaFile,
        ],
        { timeout: 60_000, env: pythonEnv() },
        (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      );
    });
    const seen = JSON.parse(out) as Record<string, unknown>;
    assert.equal(seen.register, true);
    assert.deepEqual(
      seen.services,
      ['consul', 'node-tls', 'py-tls'].filter(
        (s) => s !== 'node-tls' || (seen.services as string[]).includes('node-tls'),
      ),
    );
    assert.match(String(seen.no_client_cert), /SSLError|ConnectionError/);
    assert.equal(seen.other_ca, 'SSLError');
  });
});
