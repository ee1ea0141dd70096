/**
 * @module Test helper: a throwaway PKI made with the real `openssl` (req/x509): a CA, a server
 * certificate for 127.0.0.1/localhost, a client certificate, and a second CA with a server
 * certificate of its own (the "wrong CA"). EC P-256 keys, valid for a day.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { spawnAgent, type AgentProcess } from './cli.js';

/** A certificate and its key, as files. */
export interface CertFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TestPki {
  readonly dir: string;
  /** The CA that signed `server` and `client`. */
  readonly caFile: string;
  readonly server: CertFiles;
  readonly client: CertFiles;
  /** Another CA, unrelated to the first, and a server certificate it signed. */
  readonly otherCaFile: string;
  readonly otherServer: CertFiles;
  /** Removes the files. */
  remove(): void;
}

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function makeCa(dir: string, name: string): { caFile: string; caKey: string } {
  const caFile = join(dir, `${name}.pem`);
  const caKey = join(dir, `${name}.key`);
  openssl([
    'req',
    '-x509',
    ...EC,
    '-keyout',
    caKey,
    '-out',
    caFile,
    '-days',
    '1',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { caFile, caKey };
}

function makeLeaf(
  dir: string,
  name: string,
  ca: { caFile: string; caKey: string },
  extensions: string,
): CertFiles {
  const keyFile = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const certFile = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, extensions);
  openssl(['req', ...EC, '-keyout', keyFile, '-out', csr, '-subj', `/CN=${name}`]);
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.caFile,
    '-CAkey',
    ca.caKey,
    '-CAcreateserial',
    '-days',
    '1',
    '-out',
    certFile,
    '-extfile',
    ext,
  ]);
  return { certFile, keyFile };
}

const SERVER_EXT =
  'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n';
const CLIENT_EXT = 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n';

/** Makes the PKI in a fresh temp dir (about 0.1 s of openssl). */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-pki-'));
  const ca = makeCa(dir, 'meshwork-test-ca');
  const other = makeCa(dir, 'other-ca');
  return {
    dir,
    caFile: ca.caFile,
    server: makeLeaf(dir, 'server', ca, SERVER_EXT),
    client: makeLeaf(dir, 'client', ca, CLIENT_EXT),
    otherCaFile: other.caFile,
    otherServer: makeLeaf(dir, 'other-server', other, SERVER_EXT),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A suite's PKI and its agent process serving HTTPS with the PKI's server certificate. */
export interface TlsAgentSuite {
  readonly pki: TestPki;
  readonly agent: AgentProcess;
}

/**
 * Before the calling suite's tests: makes a PKI and spawns `meshwork agent --dev --https
 * 127.0.0.1:0` with its server certificate, plus `extra(pki)`; after them, stops the agent and
 * removes the files. Read `pki` and `agent` inside tests and hooks only.
 */
export function useTlsAgent(extra: (pki: TestPki) => readonly string[] = () => []): TlsAgentSuite {
  let pki: TestPki | undefined;
  let agent: AgentProcess | undefined;
  before(async () => {
    pki = makeTestPki();
    agent = await spawnAgent([
      '--dev',
      '--log-level',
      'warn',
      '--https',
      '127.0.0.1:0',
      '--tls-cert-file',
      pki.server.certFile,
      '--tls-key-file',
      pki.server.keyFile,
      ...extra(pki),
    ]);
  });
  after(async () => {
    agent?.child.kill('SIGTERM');
    await agent?.exited;
    pki?.remove();
  });
  const ready = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('the TLS agent has not started');
    return v;
  };
  return {
    get pki() {
      return ready(pki);
    },
    get agent() {
      return ready(agent);
    },
  };
}
