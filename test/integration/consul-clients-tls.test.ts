/**
 * Issue 20: the Consul clients the suite already uses (the npm `consul` package 2.x and Debian's
 * python-consul 0.7.1), unmodified, against an agent that serves its API over HTTPS only and
 * requires client certificates, with each client's own CA and client certificate options.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';
import { runPythonFixture } from '../helpers/python-fixture.js';
import { makeTestPki, type TestPki } from '../helpers/tls-certs.js';

const SCRIPT = fileURLToPath(new URL('../fixtures/python-consul-tls.py', import.meta.url));

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
    const seen = await runPythonFixture(SCRIPT, [
      host,
      String(port),
      pki.caFile,
      pki.client.certFile,
      pki.client.keyFile,
      pki.otherCaFile,
    ]);
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
