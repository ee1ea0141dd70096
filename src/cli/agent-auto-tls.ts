/**
 * @module The agent's HTTPS certificate from its own mesh CA (`tls.auto`): a fresh EC P-256 key,
 * a leaf signed by the active root with the agent's host names and addresses beside its SPIFFE
 * ID, renewed at a random point between 60% and 90% of its lifetime and at once when the roots
 * change (a rotation), swapped into the listener with setSecureContext so open connections stay.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import type { Server as HttpsServer } from 'node:https';
import * as x509 from '@peculiar/x509';
import type { Logger } from '../core/logger.js';
import type { MeshCa } from '../registry/ca/mesh-ca.js';
import { setApiTls, type ApiTlsOptions } from '../registry-api/server.js';

/** The identity the agent's certificate carries: spiffe://<trust-domain>/ns/<ns>/sa/<service>. */
export const AGENT_TLS_SERVICE = 'meshwork-agent';
export const AGENT_TLS_NAMESPACE = 'default';

/** The agent's certificate and key (PEM), as the HTTPS listener takes them. */
export interface AutoTlsMaterial {
  readonly cert: string;
  readonly key: string;
  /** When the leaf expires (epoch ms). */
  readonly notAfterMs: number;
}

export interface AutoTls {
  /** The certificate in force. */
  current(): AutoTlsMaterial;
  /**
   * Serves every renewal on `server` (new connections get it), with `base`: the rest of the
   * listener's TLS (client verification). Called again, it replaces both.
   */
  attach(server: HttpsServer, base: ApiTlsOptions): void;
  /** Stops renewing. */
  close(): void;
}

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A key of the agent's own and a leaf for it from `ca`, with `hosts` in its SAN. */
async function issue(ca: MeshCa, hosts: readonly string[]): Promise<AutoTlsMaterial> {
  const keys = (await webcrypto.subtle.generateKey(EC_P256, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${AGENT_TLS_SERVICE}`,
    keys,
    signingAlgorithm: EC_P256,
  });
  const leaf = ca.signLeaf({
    csr: csr.toString('pem'),
    service: AGENT_TLS_SERVICE,
    namespace: AGENT_TLS_NAMESPACE,
    hosts,
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return {
    cert: leaf.certPem,
    key: `${x509.PemConverter.encode(pkcs8, 'PRIVATE KEY')}\n`,
    notAfterMs: Date.parse(leaf.notAfter),
  };
}

/**
 * Issues the agent's first certificate (the CA MUST have started) and keeps it fresh until
 * `close()`. `random` is uniform in [0, 1), for the renewal point.
 */
export async function startAutoTls(options: {
  readonly ca: MeshCa;
  readonly hosts: readonly string[];
  readonly logger: Logger;
  readonly random?: () => number;
}): Promise<AutoTls> {
  const { ca, hosts } = options;
  const log = options.logger.child({ component: 'agent-tls' });
  const random = options.random ?? Math.random;
  let material = await issue(ca, hosts);
  let server: HttpsServer | undefined;
  let base: ApiTlsOptions = {};
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const renew = (why: string): void => {
    if (closed) return;
    issue(ca, hosts).then(
      (next) => {
        if (closed) return;
        material = next;
        if (server !== undefined) setApiTls(server, { ...base, cert: next.cert, key: next.key });
        log.info({ why, notAfter: new Date(next.notAfterMs) }, 'agent TLS certificate renewed');
        schedule();
      },
      (err: unknown) => {
        log.error({ err, why }, 'agent TLS certificate renewal failed, keeping the current one');
        schedule();
      },
    );
  };
  const schedule = (): void => {
    clearTimeout(timer);
    if (closed) return;
    const lifetimeMs = Math.max(0, material.notAfterMs - Date.now());
    // Past 60% of the lifetime, before 90%: renewals of many agents spread out. A failed renewal
    // retries within the same window of what is left.
    timer = setTimeout(() => renew('expiry'), lifetimeMs * (0.6 + 0.3 * random()));
    timer.unref();
  };
  const stopFollowing = ca.onChange(() => renew('roots changed'));
  schedule();
  log.info({ hosts, notAfter: new Date(material.notAfterMs) }, 'agent TLS certificate issued');

  return {
    current: () => material,
    attach: (s, b) => {
      server = s;
      base = b;
    },
    close: () => {
      closed = true;
      clearTimeout(timer);
      stopFollowing();
    },
  };
}
