/**
 * @module A local test CA for the mTLS data path's tests (issue 20): an EC P-256 root, leaves for
 * a SPIFFE ID with a chosen validity (an expired one too), an unrelated second CA, and a small
 * MeshTlsIdentity made from PEMs whose leaf can be swapped (renewal) as the real identity
 * manager's would. Certificates are made with @peculiar/x509 on node's WebCrypto.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { webcrypto } from 'node:crypto';
import { DEFAULT_TRUST_DOMAIN, spiffeId } from '../../src/protocol/mesh/ca.js';
import type { MeshTlsIdentity } from '../../src/proxy/tls-identity.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const HOUR_MS = 3_600_000;

/** A leaf and its key, PEM. */
export interface TestLeaf {
  readonly certPem: string;
  readonly keyPem: string;
  readonly spiffeId: string;
  readonly notAfter: Date;
}

export interface LeafOptions {
  /** Default: now - 1 h. */
  readonly notBefore?: Date;
  /** Default: now + 24 h. */
  readonly notAfter?: Date;
  /**
   * DNS SANs beside the SPIFFE ID (mesh leaves have none; a test whose client checks a host
   * name, as curl does, gives the server `localhost`).
   */
  readonly dnsNames?: readonly string[];
}

/** A root that signs leaves. */
export interface TestCa {
  readonly certPem: string;
  readonly trustDomain: string;
  /** A leaf for `id` (a SPIFFE ID, put in the URI SAN), valid as `options` say. */
  leaf(id: string, options?: LeafOptions): Promise<TestLeaf>;
  /** A leaf for `spiffe://<td>/ns/<namespace>/sa/<service>`. */
  serviceLeaf(service: string, namespace?: string, options?: LeafOptions): Promise<TestLeaf>;
}

const generate = (): Promise<webcrypto.CryptoKeyPair> =>
  webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']) as Promise<webcrypto.CryptoKeyPair>;

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

let serial = 1;
const nextSerial = (): string => (serial++).toString(16).padStart(4, '0');

/** A new root CA (`name` goes in its subject CN). */
export async function createTestCa(
  name = 'meshwork test root',
  trustDomain = DEFAULT_TRUST_DOMAIN,
): Promise<TestCa> {
  const keys = await generate();
  const now = Date.now();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: `CN=${name}`,
    notBefore: new Date(now - HOUR_MS),
    notAfter: new Date(now + 240 * HOUR_MS),
    signingAlgorithm: EC,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const leaf = async (id: string, options: LeafOptions = {}): Promise<TestLeaf> => {
    const leafKeys = await generate();
    const notAfter = options.notAfter ?? new Date(Date.now() + 24 * HOUR_MS);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: nextSerial(),
      subject: '',
      issuer: root.subject,
      notBefore: options.notBefore ?? new Date(Date.now() - HOUR_MS),
      notAfter,
      signingAlgorithm: EC,
      publicKey: leafKeys.publicKey,
      signingKey: keys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
          true,
        ),
        new x509.ExtendedKeyUsageExtension([
          x509.ExtendedKeyUsage.serverAuth,
          x509.ExtendedKeyUsage.clientAuth,
        ]),
        // SPIFFE X.509-SVID: the ID is the only URI SAN, the extension critical with no subject.
        new x509.SubjectAlternativeNameExtension(
          [
            { type: 'url', value: id },
            ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
          ],
          true,
        ),
        await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return {
      certPem: cert.toString('pem'),
      keyPem: await keyPem(leafKeys.privateKey),
      spiffeId: id,
      notAfter,
    };
  };
  return {
    certPem: root.toString('pem'),
    trustDomain,
    leaf,
    serviceLeaf: (service, namespace = 'default', options) =>
      leaf(spiffeId(trustDomain, namespace, service), options),
  };
}

/** A leaf that expired an hour ago. */
export function expiredLeaf(ca: TestCa, service: string): Promise<TestLeaf> {
  const now = Date.now();
  return ca.serviceLeaf(service, 'default', {
    notBefore: new Date(now - 48 * HOUR_MS),
    notAfter: new Date(now - HOUR_MS),
  });
}

/** A MeshTlsIdentity from PEMs whose leaf a test swaps (`renew`), as renewal would. */
export interface TestIdentity extends MeshTlsIdentity {
  /** The leaf in force. */
  leaf(): TestLeaf;
  /** Swaps in `leaf` (and `bundlePem`, when given) and tells the listeners. */
  renew(leaf: TestLeaf, bundlePem?: string): void;
}

/** The identity of `leaf` trusting `bundlePem` (default: the CA that signed it). */
export function testIdentity(
  leaf: TestLeaf,
  bundlePem: string,
  trustDomain = DEFAULT_TRUST_DOMAIN,
  /** The lowest TLS version the context allows (the proxy requires 1.3 whatever this says). */
  minVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.3',
): TestIdentity {
  let current = leaf;
  let bundle = bundlePem;
  const optionsOf = (l: TestLeaf, b: string): SecureContextOptions => ({
    cert: l.certPem,
    key: l.keyPem,
    ca: b,
    minVersion,
  });
  const contextOf = (l: TestLeaf, b: string): SecureContext => createSecureContext(optionsOf(l, b));
  let context = contextOf(current, bundle);
  const listeners = new Set<() => void>();
  return {
    trustDomain,
    get spiffeId() {
      return current.spiffeId;
    },
    secureContext: () => context,
    secureContextOptions: () => optionsOf(current, bundle),
    bundlePem: () => bundle,
    onChange: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    leaf: () => current,
    renew: (next, nextBundle) => {
      current = next;
      bundle = nextBundle ?? bundle;
      context = contextOf(current, bundle);
      for (const l of listeners) l();
    },
  };
}

/** A CA, and an identity for `service` signed by it. */
export async function serviceIdentity(ca: TestCa, service: string): Promise<TestIdentity> {
  return testIdentity(await ca.serviceLeaf(service), ca.certPem, ca.trustDomain);
}
