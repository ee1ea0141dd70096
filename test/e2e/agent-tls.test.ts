/**
 * Issue 20: TLS on the agent's HTTP API. Real agent processes with certificates made by the real
 * openssl, and the real curl as the client: HTTPS beside plain HTTP, HTTPS only, a wrong CA
 * refused, client certificates required with --tls-verify-incoming, bad files refused at start
 * (exit 2 naming the option), the certificate reloaded on SIGHUP.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, spawnAgent, type AgentProcess } from '../helpers/cli.js';
import { makeTestPki, useTlsAgent, type CertFiles, type TestPki } from '../helpers/tls-certs.js';

interface CurlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real curl (never throws: the exit code is the answer). */
function curl(args: readonly string[]): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function stop(agent: AgentProcess | undefined): Promise<void> {
  if (agent === undefined) return;
  agent.child.kill('SIGTERM');
  await agent.exited;
}

describe('meshwork agent --https', () => {
  const suite = useTlsAgent();

  it('answers curl --cacert over HTTPS, and plain HTTP beside it', async () => {
    assert.match(suite.agent.httpsUrl ?? '', /^https:\/\/127\.0\.0\.1:\d+$/);
    const tls = await curl([
      '--cacert',
      suite.pki.caFile,
      `${suite.agent.httpsUrl}/api/v1/services`,
    ]);
    assert.equal(tls.code, 0, tls.stderr);
    assert.deepEqual(JSON.parse(tls.stdout), { index: 1, services: [] });
    const live = await curl(['--cacert', suite.pki.caFile, `${suite.agent.httpsUrl}/health/live`]);
    assert.deepEqual(JSON.parse(live.stdout), { status: 'live' });
    const plain = await curl([`${suite.agent.url}/api/v1/services`]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(suite.agent.url, /^http:\/\//);
  });

  it('is refused by a client that trusts another CA (curl exit 60)', async () => {
    const r = await curl([
      '--cacert',
      suite.pki.otherCaFile,
      `${suite.agent.httpsUrl}/api/v1/services`,
    ]);
    assert.equal(r.code, 60);
    assert.match(r.stderr, /SSL certificate problem/);
  });

  it('serves the Consul API over HTTPS too, with the same guard (a bad Host is refused)', async () => {
    const r = await curl([
      '--cacert',
      suite.pki.caFile,
      `${suite.agent.httpsUrl}/v1/catalog/services`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { consul: [] });
    const rebound = await curl([
      '--cacert',
      suite.pki.caFile,
      '-H',
      'Host: evil.example',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `${suite.agent.httpsUrl}/api/v1/services`,
    ]);
    assert.equal(rebound.stdout, '403');
  });
});

describe('meshwork agent --http off --tls-verify-incoming', () => {
  const suite = useTlsAgent((pki) => [
    '--http',
    'off',
    '--tls-ca-file',
    pki.caFile,
    '--tls-verify-incoming',
  ]);

  it('serves HTTPS only', () => {
    assert.match(suite.agent.url, /^https:\/\//);
    assert.equal(suite.agent.httpsUrl, suite.agent.url);
  });

  it('refuses a client without a certificate (TLS alert: certificate required)', async () => {
    const r = await curl(['--cacert', suite.pki.caFile, `${suite.agent.url}/api/v1/services`]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /certificate required/);
  });

  /** curl to the agent with the client certificate `cert` (and `extra` flags). */
  const withCert = (cert: CertFiles, ...extra: string[]): Promise<CurlResult> =>
    curl([
      ...extra,
      '--cacert',
      suite.pki.caFile,
      '--cert',
      cert.certFile,
      '--key',
      cert.keyFile,
      `${suite.agent.url}/api/v1/services`,
    ]);

  it('accepts a client certificate signed by --tls-ca-file', async () => {
    const r = await withCert(suite.pki.client);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { index: 1, services: [] });
  });

  it('refuses a client certificate signed by another CA', async () => {
    const r = await withCert(suite.pki.otherServer);
    // Under TLS 1.3 the server judges the client's certificate after curl has finished its
    // side of the handshake, so curl sees the refusal as an empty reply or a reset, whichever
    // comes first; under TLS 1.2 the handshake itself fails (curl exit 35).
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '');
    const tls12 = await withCert(suite.pki.otherServer, '--tls-max', '1.2');
    assert.equal(tls12.code, 35, tls12.stderr);
    assert.equal(tls12.stdout, '');
  });
});

describe('meshwork agent: bad TLS files', () => {
  let pki: TestPki;
  before(() => {
    pki = makeTestPki();
  });
  after(() => pki.remove());

  const start = (...tls: string[]) =>
    runCli([
      'agent',
      '--dev',
      '--http',
      '127.0.0.1:0',
      '--dns',
      'off',
      '--https',
      '127.0.0.1:0',
      ...tls,
    ]);

  it('exits 2 naming the option and the reason, before listening', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['--tls-cert-file', join(pki.dir, 'absent.pem'), '--tls-key-file', pki.server.keyFile],
        /tls\.certFile \(--tls-cert-file\): cannot read .*absent\.pem: ENOENT/,
      ],
      [
        ['--tls-cert-file', pki.server.certFile, '--tls-key-file', pki.server.certFile],
        /tls\.keyFile \(--tls-key-file\): .*server\.pem: not a PEM private key/,
      ],
      [
        ['--tls-cert-file', pki.server.keyFile, '--tls-key-file', pki.server.keyFile],
        /tls\.certFile \(--tls-cert-file\): .*server\.key: not a PEM certificate/,
      ],
      [
        ['--tls-cert-file', pki.server.certFile, '--tls-key-file', pki.client.keyFile],
        /tls\.keyFile \(--tls-key-file\): .*client\.key: the key does not match the certificate of tls\.certFile \(--tls-cert-file\)/,
      ],
      [
        [
          '--tls-cert-file',
          pki.server.certFile,
          '--tls-key-file',
          pki.server.keyFile,
          '--tls-ca-file',
          pki.server.keyFile,
        ],
        /tls\.caFile \(--tls-ca-file\): .*server\.key: not a PEM certificate/,
      ],
      [[], /tls\.certFile \(--tls-cert-file\): required with https/],
      [
        [
          '--tls-cert-file',
          pki.server.certFile,
          '--tls-key-file',
          pki.server.keyFile,
          '--tls-verify-incoming',
        ],
        /tls\.caFile \(--tls-ca-file\): required with tls\.verifyIncoming/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await start(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stdout, /listening/);
    }
  });
});

describe('meshwork agent: SIGHUP reloads the certificate', () => {
  let pki: TestPki;
  let agent: AgentProcess;
  let certFile: string;
  let keyFile: string;

  before(async () => {
    pki = makeTestPki();
    certFile = join(pki.dir, 'live.pem');
    keyFile = join(pki.dir, 'live.key');
    copyFileSync(pki.server.certFile, certFile);
    copyFileSync(pki.server.keyFile, keyFile);
    agent = await spawnAgent([
      '--dev',
      '--log-level',
      'info',
      '--https',
      '127.0.0.1:0',
      '--tls-cert-file',
      certFile,
      '--tls-key-file',
      keyFile,
    ]);
  });
  after(async () => {
    await stop(agent);
    pki.remove();
  });

  it('serves the files on disk to new connections after SIGHUP; bad files keep the old', async () => {
    const services = `${agent.httpsUrl}/api/v1/services`;
    assert.equal((await curl(['--cacert', pki.caFile, services])).code, 0);
    // A half-written renewal (the key of another certificate): refused, the old one still served.
    copyFileSync(pki.otherServer.certFile, certFile);
    agent.child.kill('SIGHUP');
    await agent.waitForStderr(/TLS files invalid, keeping the running certificate/);
    assert.equal((await curl(['--cacert', pki.caFile, services])).code, 0);
    // The renewal completed: the new certificate (of the other CA) from now on.
    copyFileSync(pki.otherServer.keyFile, keyFile);
    agent.child.kill('SIGHUP');
    await agent.waitForStderr(/TLS certificate reloaded/);
    // setSecureContext is synchronous: the next connection after the log line gets the new one.
    const renewed = await curl(['--cacert', pki.otherCaFile, services]);
    assert.equal(renewed.code, 0, renewed.stderr);
    assert.equal((await curl(['--cacert', pki.caFile, services])).code, 60);
  });
});
