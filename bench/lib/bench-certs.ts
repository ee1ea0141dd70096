/**
 * @module Certificates for the mTLS benchmarks' nginx peers, made with the real `openssl`: one
 * CA (EC P-256) and leaves for the two ends, each with a DNS SAN (what nginx verifies with
 * `proxy_ssl_name`) and the SPIFFE URI SAN a sidecar of that service would carry.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BenchLeaf {
  readonly cert: string;
  readonly key: string;
}

export interface BenchCerts {
  /** The CA certificate (PEM file). */
  readonly ca: string;
  leaf(service: string): BenchLeaf;
}

const openssl = (args: readonly string[], cwd: string): void => {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
};

/** Makes a CA in `<dir>/certs`; `leaf(service)` signs a leaf for that service (cached). */
export function makeBenchCerts(dir: string): BenchCerts {
  const at = join(dir, 'certs');
  mkdirSync(at, { recursive: true });
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], at);
  openssl(
    [
      ...['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=meshwork-bench-ca', '-days', '2'],
      ...['-addext', 'basicConstraints=critical,CA:TRUE'],
      ...['-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.crt'],
    ],
    at,
  );
  const leaves = new Map<string, BenchLeaf>();
  return {
    ca: join(at, 'ca.crt'),
    leaf(service) {
      const known = leaves.get(service);
      if (known !== undefined) return known;
      openssl(
        ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${service}.key`],
        at,
      );
      openssl(
        [
          'req',
          '-new',
          '-key',
          `${service}.key`,
          '-subj',
          `/CN=${service}`,
          '-out',
          `${service}.csr`,
        ],
        at,
      );
      writeFileSync(
        join(at, `${service}.ext`),
        [
          `subjectAltName=DNS:${service},URI:spiffe://cluster.local/ns/default/sa/${service}`,
          'extendedKeyUsage=serverAuth,clientAuth',
          'keyUsage=critical,digitalSignature',
          '',
        ].join('\n'),
      );
      openssl(
        [
          ...['x509', '-req', '-in', `${service}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key'],
          ...['-CAcreateserial', '-days', '2', '-extfile', `${service}.ext`],
          ...['-out', `${service}.crt`],
        ],
        at,
      );
      const leaf = { cert: join(at, `${service}.crt`), key: join(at, `${service}.key`) };
      leaves.set(service, leaf);
      return leaf;
    },
  };
}
