/**
 * @module The CA's certificate work on @peculiar/x509 (no hand-written ASN.1): make a root
 * (EC P-256, self-signed), read and verify a CSR, sign a leaf whose only SAN is a SPIFFE ID.
 */
import 'reflect-metadata';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  sign,
  verify,
  webcrypto,
  type KeyObject,
} from 'node:crypto';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { AsnConvert, AsnSerializer, OctetString } from '@peculiar/asn1-schema';
import * as asn1X509 from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import { errors } from '../../core/errors.js';

// @peculiar/x509 signs with WebCrypto; node's is the provider (the same everywhere on Node 20).
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const OID_COMMON_NAME = '2.5.4.3';
const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';

/** A CSR's PEM beyond this is refused before parsing (a P-256 or RSA-4096 CSR is ~1-2 KB). */
export const MAX_CSR_PEM_BYTES = 16 * 1024;
/** RSA keys shorter than this are refused (NIST SP 800-131A). */
export const MIN_RSA_BITS = 2048;
/** Leaves start this much before they are signed, so a peer whose clock is behind takes them. */
export const LEAF_BACKDATE_MS = 60_000;

/** A root as the CA keeps it: the certificate and its private key (PKCS#8), both PEM. */
export interface RootMaterial {
  /** Hex SHA-256 of the certificate's DER (CaRoot.id). */
  readonly id: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** Epoch ms. */
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

/** A root ready to sign: its certificate parsed and its key imported (done once per root). */
export interface RootSigner {
  readonly root: RootMaterial;
  readonly cert: x509.X509Certificate;
  /** node's KeyObject of the root's private key (signs the leaves). */
  readonly privateKey: KeyObject;
  /** The leaves' issuer (the root's subject), parsed once. */
  readonly issuer: asn1X509.Name;
  /** ecdsa-with-SHA256. */
  readonly signatureAlgorithm: asn1X509.AlgorithmIdentifier;
  /** Every leaf's extensions but its SAN (constraints, usages, authority key id), built once. */
  readonly leafExtensions: readonly asn1X509.Extension[];
}

/** A random positive serial of 128 bits, hex (RFC 5280 4.1.2.2: at most 20 octets, positive). */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  // Clear the sign bit (a DER INTEGER is signed) and keep the first byte non-zero so the
  // serial is exactly 16 octets, never shortened by DER's minimal encoding.
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

/** The CaRoot id of a certificate: the hex SHA-256 of its DER. */
export function certificateId(cert: x509.X509Certificate): string {
  return createHash('sha256').update(new Uint8Array(cert.rawData)).digest('hex');
}

/**
 * Makes a root: a fresh P-256 key, a self-signed certificate (CA:true, keyCertSign + cRLSign,
 * critical) valid from `nowMs` - 1 min for `lifetimeMs`, named after the trust domain, with
 * the trust domain's SPIFFE ID (`spiffe://<td>`) as its URI SAN, as Consul's roots carry.
 */
export async function createRoot(options: {
  readonly trustDomain: string;
  readonly nowMs: number;
  readonly lifetimeMs: number;
}): Promise<RootMaterial> {
  const keys = (await webcrypto.subtle.generateKey(EC_P256, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const notBefore = new Date(options.nowMs - LEAF_BACKDATE_MS);
  const notAfter = new Date(options.nowMs + options.lifetimeMs);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [
      { O: ['Meshwork'] },
      { CN: [`Meshwork CA ${options.trustDomain} ${new Date(options.nowMs).toISOString()}`] },
    ],
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.SubjectAlternativeNameExtension([
        { type: 'url', value: `spiffe://${options.trustDomain}` },
      ]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return {
    id: certificateId(cert),
    certPem: `${cert.toString('pem')}\n`,
    keyPem: `${x509.PemConverter.encode(pkcs8, 'PRIVATE KEY')}\n`,
    notBeforeMs: notBefore.getTime(),
    notAfterMs: notAfter.getTime(),
  };
}

/**
 * Parses a root's certificate and key, once, for signing. Throws when the material is not a
 * root this CA made (no SubjectKeyIdentifier, or a key that is not P-256).
 */
export function rootSigner(root: RootMaterial): RootSigner {
  const cert = new x509.X509Certificate(root.certPem);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski === null) throw new Error(`root ${root.id} has no SubjectKeyIdentifier`);
  const privateKey = createPrivateKey(root.keyPem);
  if (privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw new Error(`root ${root.id}'s key is not EC P-256`);
  const asExtension = (e: x509.Extension) => AsnConvert.parse(e.rawData, asn1X509.Extension);
  return {
    root,
    cert,
    privateKey,
    issuer: AsnConvert.parse(cert.subjectName.toArrayBuffer(), asn1X509.Name),
    signatureAlgorithm: new asn1X509.AlgorithmIdentifier({ algorithm: OID_ECDSA_WITH_SHA256 }),
    leafExtensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      // RFC 5280 4.2.1.1: the issuer's subject key identifier.
      new x509.AuthorityKeyIdentifierExtension(ski.keyId),
    ].map(asExtension),
  };
}

/** A CSR whose signature holds and whose key the CA accepts. */
export interface VerifiedCsr {
  /** The CSR's SubjectPublicKeyInfo, parsed: what the leaf certifies. */
  readonly publicKeyInfo: asn1X509.SubjectPublicKeyInfo;
  /** `ec P-256` or `rsa 2048`: what the key is, for logs. */
  readonly keyDescription: string;
}

const PEM_CSR =
  /^\s*-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n[A-Za-z0-9+/=\r\n]+-----END (NEW )?CERTIFICATE REQUEST-----\s*$/;

/** The hash of each CSR signature algorithm accepted (RFC 5758 3.2, RFC 8017 A.2.4), by OID. */
const CSR_SIGNATURE_HASHES: Readonly<Record<string, { hash: string; ec: boolean }>> = {
  '1.2.840.10045.4.3.2': { hash: 'sha256', ec: true },
  '1.2.840.10045.4.3.3': { hash: 'sha384', ec: true },
  '1.2.840.10045.4.3.4': { hash: 'sha512', ec: true },
  '1.2.840.113549.1.1.11': { hash: 'sha256', ec: false },
  '1.2.840.113549.1.1.12': { hash: 'sha384', ec: false },
  '1.2.840.113549.1.1.13': { hash: 'sha512', ec: false },
};

/**
 * Reads a PEM CSR and checks it: one PKCS#10 request, its key EC P-256 or RSA of at least 2048
 * bits, its self-signature valid (ECDSA or RSA PKCS#1 v1.5 with SHA-256/384/512). Throws a
 * VALIDATION error on field `csr` naming what is wrong; never anything else, whatever the input.
 * Only the public key is taken: the subject and any extension the CSR asks for are ignored.
 */
export function verifyCsr(pem: string): VerifiedCsr {
  if (pem.length > MAX_CSR_PEM_BYTES)
    throw errors.validation('csr', `must be at most ${MAX_CSR_PEM_BYTES} bytes`);
  if (!PEM_CSR.test(pem)) throw errors.validation('csr', 'not a PEM certificate request');
  let csr: CertificationRequest;
  try {
    csr = AsnConvert.parse(x509.PemConverter.decodeFirst(pem), CertificationRequest);
  } catch {
    throw errors.validation('csr', 'not a PEM certificate request');
  }
  const tbs = csr.certificationRequestInfoRaw;
  if (tbs === undefined) throw errors.validation('csr', 'not a PEM certificate request');
  const publicKeyInfo = csr.certificationRequestInfo.subjectPKInfo;
  const { key, ec, description, accepted } = publicKeyOf(publicKeyInfo);
  if (!accepted) {
    throw errors.validation(
      'csr',
      `key must be EC P-256 or RSA of at least ${MIN_RSA_BITS} bits (got ${description})`,
    );
  }
  const algorithm = csr.signatureAlgorithm.algorithm;
  const signing = CSR_SIGNATURE_HASHES[algorithm];
  if (signing === undefined || signing.ec !== ec) {
    throw errors.validation(
      'csr',
      `signature algorithm ${algorithm} not accepted (ECDSA or RSA PKCS#1 v1.5, SHA-256/384/512)`,
    );
  }
  let valid: boolean;
  try {
    // node's verify on the request's own bytes: an ECDSA signature in a CSR is DER already.
    valid = verify(
      signing.hash,
      new Uint8Array(tbs),
      ec ? { key, dsaEncoding: 'der' } : key,
      new Uint8Array(csr.signature),
    );
  } catch {
    valid = false;
  }
  if (!valid) throw errors.validation('csr', 'signature does not verify');
  return {
    publicKeyInfo,
    keyDescription: description,
  };
}

/** DER of the OID prime256v1 (1.2.840.10045.3.1.7), as EC parameters carry it (RFC 5480 2.1.1). */
const P256_PARAMETERS = Buffer.from('06082a8648ce3d030107', 'hex');

/**
 * The CSR's key as node's KeyObject, and what it is (`ec P-256`, `rsa 2048`, or what else it
 * is when it is refused). A P-256 point is imported as a JWK: node decodes a JWK in about half
 * the time of the same key as SPKI DER (OpenSSL's decoder chain), a tenth of a leaf's cost.
 * Throws VALIDATION on `csr` when the key cannot be read.
 */
function publicKeyOf(info: asn1X509.SubjectPublicKeyInfo): {
  key: KeyObject;
  ec: boolean;
  description: string;
  /** EC P-256, or RSA of at least MIN_RSA_BITS. */
  accepted: boolean;
} {
  try {
    const point = new Uint8Array(info.subjectPublicKey);
    const parameters = info.algorithm.parameters;
    if (
      info.algorithm.algorithm === OID_EC_PUBLIC_KEY &&
      parameters !== null &&
      parameters !== undefined &&
      P256_PARAMETERS.equals(new Uint8Array(parameters)) &&
      point.length === 65 &&
      point[0] === 0x04
    ) {
      const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
      const key = createPublicKey({
        key: { kty: 'EC', crv: 'P-256', x: b64(point.subarray(1, 33)), y: b64(point.subarray(33)) },
        format: 'jwk',
      });
      return { key, ec: true, description: 'ec P-256', accepted: true };
    }
    const der = new Uint8Array(AsnConvert.serialize(info));
    const key = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
    const d = key.asymmetricKeyDetails ?? {};
    if (key.asymmetricKeyType === 'rsa') {
      const bits = d.modulusLength ?? 0;
      return { key, ec: false, description: `rsa ${bits}`, accepted: bits >= MIN_RSA_BITS };
    }
    if (key.asymmetricKeyType === 'ec') {
      // A P-256 key spelled otherwise (a compressed point, explicit parameters) is refused too:
      // peers' TLS stacks expect the named curve and an uncompressed point.
      return { key, ec: true, description: `ec ${d.namedCurve ?? '?'}`, accepted: false };
    }
    return { key, ec: false, description: key.asymmetricKeyType ?? 'unknown', accepted: false };
  } catch {
    throw errors.validation('csr', 'its public key cannot be read');
  }
}

/** What a leaf is for. */
export interface LeafParams {
  readonly signer: RootSigner;
  readonly csr: VerifiedCsr;
  /** The leaf's only SAN (a URI). */
  readonly spiffeId: string;
  /** Subject CN. */
  readonly commonName: string;
  readonly nowMs: number;
  readonly ttlMs: number;
}

export interface SignedLeaf {
  readonly certPem: string;
  readonly serial: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

/**
 * Signs a leaf for the CSR's key: subject CN, one URI SAN (whatever the CSR asked for),
 * CA:false, digitalSignature + keyEncipherment, serverAuth + clientAuth, a random 128-bit
 * serial, valid from 1 min before `nowMs` to `nowMs + ttlMs`, never past the root's notAfter.
 *
 * Built on @peculiar/asn1-x509's structures rather than X509CertificateGenerator: the
 * generator re-parses every extension and the finished certificate, which held signing to
 * ~250 leaves/s; here the fixed parts are built once per root and the TBS is encoded once.
 */
export function signLeaf(p: LeafParams): SignedLeaf {
  const serial = randomSerial();
  // Certificates carry whole seconds (UTCTime): round so the answer says what the leaf holds.
  const notBeforeMs = wholeSecond(Math.max(p.nowMs - LEAF_BACKDATE_MS, p.signer.root.notBeforeMs));
  const notAfterMs = wholeSecondDown(Math.min(p.nowMs + p.ttlMs, p.signer.root.notAfterMs));
  const san = new asn1X509.Extension({
    extnID: asn1X509.id_ce_subjectAltName,
    critical: false,
    extnValue: new OctetString(
      AsnConvert.serialize(
        new asn1X509.SubjectAlternativeName([
          new asn1X509.GeneralName({ uniformResourceIdentifier: p.spiffeId }),
        ]),
      ),
    ),
  });
  const tbs = new asn1X509.TBSCertificate({
    version: asn1X509.Version.v3,
    serialNumber: new Uint8Array(Buffer.from(serial, 'hex')).buffer,
    signature: p.signer.signatureAlgorithm,
    issuer: p.signer.issuer,
    subject: new asn1X509.Name([
      new asn1X509.RelativeDistinguishedName([
        new asn1X509.AttributeTypeAndValue({
          type: OID_COMMON_NAME,
          value: new asn1X509.AttributeValue({ utf8String: p.commonName }),
        }),
      ]),
    ]),
    validity: new asn1X509.Validity({
      notBefore: new Date(notBeforeMs),
      notAfter: new Date(notAfterMs),
    }),
    subjectPublicKeyInfo: p.csr.publicKeyInfo,
    extensions: new asn1X509.Extensions([...p.signer.leafExtensions, san]),
  });
  const tbsAsn = AsnSerializer.toASN(tbs);
  const signature = sign('sha256', new Uint8Array(tbsAsn.toBER(false)), {
    key: p.signer.privateKey,
    dsaEncoding: 'der',
  });
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
  // (RFC 5280 4.1), from the encoded TBS rather than re-encoding it.
  const der = new asn1js.Sequence({
    value: [
      tbsAsn,
      AsnSerializer.toASN(p.signer.signatureAlgorithm),
      new asn1js.BitString({ valueHex: new Uint8Array(signature) }),
    ],
  }).toBER(false);
  return {
    certPem: `${x509.PemConverter.encode(der, 'CERTIFICATE')}\n`,
    serial,
    notBeforeMs,
    notAfterMs,
  };
}

const wholeSecond = (ms: number): number => Math.ceil(ms / 1000) * 1000;
const wholeSecondDown = (ms: number): number => Math.floor(ms / 1000) * 1000;
