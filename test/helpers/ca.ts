/** @module Test helpers for the mesh CA: keys and CSRs made as a sidecar makes them. */
import 'reflect-metadata';
import { webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface TestCsr {
  /** The CSR, PEM. */
  readonly pem: string;
  /** Its private key, PKCS#8 PEM. */
  readonly keyPem: string;
}

const ALGORITHMS = {
  'ec-p256': { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
  'ec-p384': { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' },
  'rsa-2048': {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  },
  'rsa-1024': {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 1024,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  },
} as const;

/**
 * A fresh key and a CSR for it. The CSR asks for what a hostile caller might (another CN, a
 * DNS SAN, a SPIFFE URI of another service): the CA must ignore all of it.
 */
export async function makeCsr(
  options: { key?: keyof typeof ALGORITHMS; commonName?: string; askFor?: string } = {},
): Promise<TestCsr> {
  const algorithm = ALGORITHMS[options.key ?? 'ec-p256'];
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${options.commonName ?? 'evil'}`,
    keys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'evil.example' },
        { type: 'url', value: options.askFor ?? 'spiffe://cluster.local/ns/default/sa/payments' },
      ]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { pem: csr.toString('pem'), keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') };
}

/** The certificates of a PEM bundle, in order. */
export function bundleCertificates(pem: string): X509Certificate[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)].map(
    (m) => new X509Certificate(m[0]),
  );
}
