/**
 * @module A proxy's key and certificate signing request (issue 20): an EC P-256 key made in
 * this process and a PKCS#10 CSR for the service's SPIFFE ID, with @peculiar/x509. Loaded with
 * `import()` by the identity manager on first use, so a proxy whose agent has no CA never
 * loads @peculiar/x509 and its dependencies (reflect-metadata, tsyringe, asn1 schemas).
 */
// @peculiar/x509's tsyringe container needs the Reflect metadata API before it loads.
import 'reflect-metadata';
import {
  cryptoProvider,
  Pkcs10CertificateRequestGenerator,
  SubjectAlternativeNameExtension,
} from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

cryptoProvider.set(webcrypto as unknown as Parameters<typeof cryptoProvider.set>[0]);

/** A fresh key and a CSR for it. The key is PKCS#8 PEM, for `tls.createSecureContext`. */
export interface KeyAndCsr {
  /** The private key. MUST stay in memory: never logged, dumped, sent or written to disk. */
  readonly keyPem: string;
  readonly csrPem: string;
}

/** DER as PEM with `label` (RFC 7468: base64 in lines of 64). */
export const derToPem = (label: string, der: ArrayBuffer): string =>
  `-----BEGIN ${label}-----\n${(
    Buffer.from(der)
      .toString('base64')
      .match(/.{1,64}/g) ?? []
  ).join('\n')}\n-----END ${label}-----\n`;

/** An EC P-256 key pair for ECDSA, extractable: node's TLS takes the key as PEM. */
export async function generateP256KeyPair(): Promise<webcrypto.CryptoKeyPair> {
  const ec = { name: 'ECDSA', namedCurve: 'P-256' } as const;
  return (await webcrypto.subtle.generateKey(ec, true, [
    'sign',
    'verify',
  ])) as unknown as webcrypto.CryptoKeyPair;
}

/**
 * Makes a key and a CSR whose subject is `CN=<service>` and whose URI SAN is the SPIFFE ID
 * (the agent decides the leaf's names; it uses only the CSR's public key).
 */
export async function createKeyAndCsr(spiffeId: string, service: string): Promise<KeyAndCsr> {
  const ec = { name: 'ECDSA', namedCurve: 'P-256' } as const;
  // Extractable: node's TLS takes the key as PEM, not as a webcrypto.CryptoKey.
  const keys = (await webcrypto.subtle.generateKey(ec, true, [
    'sign',
    'verify',
  ])) as unknown as webcrypto.CryptoKeyPair;
  const csr = await Pkcs10CertificateRequestGenerator.create({
    name: `CN=${service}`,
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }])],
  });
  const keyPem = derToPem(
    'PRIVATE KEY',
    await webcrypto.subtle.exportKey('pkcs8', keys.privateKey),
  );
  return { keyPem, csrPem: csr.toString('pem') + '\n' };
}
