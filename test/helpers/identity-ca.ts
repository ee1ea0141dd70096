/**
 * @module A small mesh CA for tests (issue 20), made with @peculiar/x509 on node's WebCrypto:
 * an EC P-256 root, and leaves for a SPIFFE ID with any validity (an expired one included),
 * signed for a key of their own or for a CSR's key. Shaped like the agent's: the root carries
 * the trust domain's URI SAN; a leaf is CA:false, digitalSignature + keyEncipherment,
 * serverAuth + clientAuth, with one URI SAN (the SPIFFE ID). And one mTLS handshake between two
 * SecureContexts, to check what each side saw.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHash, randomBytes, webcrypto } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import {
  connect as tlsConnect,
  createServer as createTlsServer,
  type SecureContext,
} from 'node:tls';
import { DEFAULT_TRUST_DOMAIN } from '../../src/protocol/mesh/ca.js';
import { derToPem } from '../../src/proxy/mesh-identity/csr.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** An EC P-256 key pair for ECDSA on WebCrypto, extractable (node's TLS takes PEM). */
async function generateP256KeyPair(): Promise<webcrypto.CryptoKeyPair> {
  const ec = { name: 'ECDSA', namedCurve: 'P-256' } as const;
  return (await webcrypto.subtle.generateKey(ec, true, [
    'sign',
    'verify',
  ])) as unknown as webcrypto.CryptoKeyPair;
}
const HOUR_MS = 3_600_000;

export interface TestRoot {
  /** Hex SHA-256 of the DER, as the agent's root ids. */
  readonly id: string;
  readonly certPem: string;
  readonly trustDomain: string;
  readonly cert: x509.X509Certificate;
  readonly keys: webcrypto.CryptoKeyPair;
}

export interface TestLeaf {
  readonly certPem: string;
  /** PKCS#8 PEM of the leaf's key; undefined when the leaf was signed for a CSR. */
  readonly keyPem: string | undefined;
  /** Hex, lower case. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly rootId: string;
}

export interface LeafValidity {
  /** Default: an hour ago. */
  readonly notBefore?: Date;
  /** Default: notBefore + 24 h. A date in the past makes an expired leaf. */
  readonly notAfter?: Date;
  /** Hex; default random. */
  readonly serial?: string;
}

/** Makes a root (EC P-256, self-signed, valid from an hour ago for `validDays`, default 3650). */
export async function createTestRoot(
  options: { trustDomain?: string; name?: string; validDays?: number } = {},
): Promise<TestRoot> {
  const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const keys = await generateP256KeyPair();
  const notBefore = new Date(Date.now() - HOUR_MS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: `01${randomBytes(15).toString('hex')}`,
    name: `CN=${options.name ?? 'Meshwork Test Root'} ${randomBytes(4).toString('hex')}`,
    notBefore,
    notAfter: new Date(notBefore.getTime() + (options.validDays ?? 3650) * 24 * HOUR_MS),
    keys,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
    ],
  });
  const id = createHash('sha256').update(Buffer.from(cert.rawData)).digest('hex');
  return { id, certPem: cert.toString('pem') + '\n', trustDomain, cert, keys };
}

async function issue(
  root: TestRoot,
  publicKey: webcrypto.CryptoKey | x509.PublicKey,
  spiffeId: string,
  validity: LeafValidity,
): Promise<Omit<TestLeaf, 'keyPem'>> {
  const notBefore = validity.notBefore ?? new Date(Date.now() - HOUR_MS);
  const notAfter = validity.notAfter ?? new Date(notBefore.getTime() + 24 * HOUR_MS);
  // A positive serial: the first byte's top bit clear.
  const serial = validity.serial ?? `1${randomBytes(15).toString('hex')}`;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: '',
    issuer: root.cert.subject,
    notBefore,
    notAfter,
    publicKey,
    signingKey: root.keys.privateKey,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(root.keys.publicKey),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true),
    ],
  });
  return {
    certPem: cert.toString('pem') + '\n',
    serial: cert.serialNumber.toLowerCase(),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    rootId: root.id,
  };
}

/** A leaf with a key of its own (both PEM): for a peer, or an expired certificate. */
export async function createTestLeaf(
  root: TestRoot,
  spiffeId: string,
  validity: LeafValidity = {},
): Promise<TestLeaf> {
  const keys = await generateP256KeyPair();
  const leaf = await issue(root, keys.publicKey, spiffeId, validity);
  const keyPem = derToPem(
    'PRIVATE KEY',
    await webcrypto.subtle.exportKey('pkcs8', keys.privateKey),
  );
  return { ...leaf, keyPem };
}

/**
 * Signs a PKCS#10 CSR (PEM) for `spiffeId`, as the agent's CA does: the CSR's signature must
 * verify (else this throws); only its public key is used.
 */
export async function signTestCsr(
  root: TestRoot,
  csrPem: string,
  spiffeId: string,
  validity: LeafValidity = {},
): Promise<TestLeaf> {
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  if (!(await csr.verify())) throw new Error('the CSR signature does not verify');
  const leaf = await issue(root, csr.publicKey, spiffeId, validity);
  return { ...leaf, keyPem: undefined };
}

/**
 * Signs the public key of an existing certificate again (same key, another SPIFFE ID, root or
 * validity): a leaf "for another service" or "from another CA" that the holder of the key can
 * present.
 */
export async function reissueTestLeaf(
  root: TestRoot,
  certPem: string,
  spiffeId: string,
  validity: LeafValidity = {},
): Promise<TestLeaf> {
  const leaf = await issue(root, new x509.X509Certificate(certPem).publicKey, spiffeId, validity);
  return { ...leaf, keyPem: undefined };
}

/** What each side of one mTLS handshake saw. */
export interface HandshakeResult {
  /** The client verified the server's chain against its context's CAs. */
  readonly authorized: boolean;
  readonly protocol: string | null;
  /** The URI SANs each side saw on the other's certificate (`URI:spiffe://...`). */
  readonly serverSaw: string;
  readonly clientSaw: string;
}

/**
 * One mutual TLS handshake on loopback: a server that requires and verifies a client
 * certificate (with `server`'s SecureContext) and a
 * client with `client`'s (node's hostname check is off: it ignores URI SANs). Rejects when
 * either side refuses the other.
 */
export async function mtlsHandshake(
  server: SecureContext,
  client: SecureContext,
): Promise<HandshakeResult> {
  let serverError: Error | undefined;
  // A tls.Server (it verifies the client, a bare server-side TLSSocket does not), refusing an
  // unverified client here to keep the reason; its context comes from SNICallback, the client
  // naming any server name.
  const listener = createTlsServer(
    {
      requestCert: true,
      rejectUnauthorized: false,
      SNICallback: (_name, cb) => cb(null, server),
    },
    (s) => {
      if (s.authorized) s.end(`${s.getPeerCertificate().subjectaltname ?? ''}\n`);
      else {
        serverError = new Error(String(s.authorizationError));
        s.destroy();
      }
    },
  );
  listener.on('tlsClientError', (err) => (serverError = err));
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  try {
    const socket = tlsConnect({
      port: (listener.address() as AddressInfo).port,
      host: '127.0.0.1',
      secureContext: client,
      servername: 'mesh.test',
      checkServerIdentity: () => undefined,
    });
    await once(socket, 'secureConnect');
    const result = {
      authorized: socket.authorized,
      protocol: socket.getProtocol(),
      clientSaw: socket.getPeerCertificate().subjectaltname ?? '',
    };
    let got = '';
    // TLS 1.3: the client is connected before the server has verified its certificate; a
    // refusal arrives as an alert (or a close) afterwards.
    for await (const chunk of socket) got += String(chunk);
    if (got === '')
      throw new Error(`the server refused the client: ${serverError?.message ?? 'closed'}`);
    return { ...result, serverSaw: got.trim() };
  } finally {
    listener.close();
  }
}
