/**
 * Cluster mode on a secured etcd (issue 20: the CA's root key lives in etcd, so etcd is reached
 * over TLS with a client certificate and with etcd's password auth): a real etcd with
 * `--client-cert-auth` and auth enabled, certificates made by the real openssl. An agent given
 * --etcd-ca/--etcd-cert/--etcd-key and --etcd-username/--etcd-password serves (and its CA
 * works); without the client certificate, or with a wrong password, it does not start.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import type { RunningAgent } from '../../src/cli/agent-runtime.js';
import type { CaRootsResponse } from '../../src/protocol/mesh/ca.js';
import { http, startClusterAgent } from '../helpers/agent.js';
import { startEtcd, type EtcdProcess, type EtcdTls } from '../helpers/etcd.js';

const PASSWORD = 'root-password';

/** A CA and one certificate (server and client, IP 127.0.0.1) it signed, made by openssl. */
function makeCertificates(dir: string): EtcdTls {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const p256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run(
    ['req', '-x509', ...p256, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1'].concat([
      '-subj',
      '/CN=etcd test CA',
    ]),
  );
  run(['req', '-new', ...p256, '-keyout', 'etcd.key', '-out', 'etcd.csr', '-subj', '/CN=root']);
  writeFileSync(
    join(dir, 'ext.cnf'),
    'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  run(
    [
      'x509',
      '-req',
      '-in',
      'etcd.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
    ].concat(['-out', 'etcd.pem', '-days', '1', '-extfile', 'ext.cnf']),
  );
  return {
    caFile: join(dir, 'ca.pem'),
    certFile: join(dir, 'etcd.pem'),
    keyFile: join(dir, 'etcd.key'),
  };
}

describe('cluster mode on etcd with TLS client certificates and password auth', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-etcd-tls-'));
  let tls: EtcdTls;
  let etcd: EtcdProcess;
  let agent: RunningAgent | undefined;
  before(async () => {
    tls = makeCertificates(dir);
    etcd = await startEtcd({ tls });
    const admin = new Etcd3({
      hosts: etcd.endpoint,
      credentials: {
        rootCertificate: readFileSync(tls.caFile),
        certChain: readFileSync(tls.certFile),
        privateKey: readFileSync(tls.keyFile),
      },
    });
    try {
      await admin.role('root').create();
      await admin.user('root').create(PASSWORD);
      await admin.user('root').addRole('root');
      await admin.auth.authEnable();
    } finally {
      admin.close();
    }
  });
  after(async () => {
    await agent?.close();
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves with the CA, the client certificate and the password; its mesh CA works', async () => {
    agent = await startClusterAgent([etcd.endpoint], 'secure-a', '/secure/', {
      etcdCa: tls.caFile,
      etcdCert: tls.certFile,
      etcdKey: tls.keyFile,
      etcdUsername: 'root',
      etcdPassword: PASSWORD,
    });
    const reg = await http(agent.url, 'PUT', '/api/v1/instances', {
      service: 'orders',
      id: 'orders-1',
      address: '127.0.0.1',
      port: 8080,
    });
    assert.equal(reg.status, 200, reg.text);
    const roots = await http<CaRootsResponse>(agent.url, 'GET', '/api/v1/mesh/ca/roots');
    assert.equal(roots.status, 200, roots.text);
    assert.equal(roots.body.roots.length, 1);
  });

  it('does not start without the client certificate, or with a wrong password', async () => {
    for (const flags of [
      { etcdCa: tls.caFile, etcdUsername: 'root', etcdPassword: PASSWORD },
      {
        etcdCa: tls.caFile,
        etcdCert: tls.certFile,
        etcdKey: tls.keyFile,
        etcdUsername: 'root',
        etcdPassword: 'wrong',
      },
    ]) {
      await assert.rejects(
        startClusterAgent([etcd.endpoint], 'secure-b', '/secure/', flags),
        JSON.stringify({ ...flags, etcdCa: undefined }),
      );
    }
  });
});
