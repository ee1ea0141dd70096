/**
 * @module A proxy's key and certificate signing request (issue 20): an EC P-256 key made in
 * this process with node's crypto, and a PKCS#10 CSR (RFC 2986) for the service's SPIFFE ID,
 * its structures encoded with @peculiar/asn1-csr and @peculiar/asn1-x509 (the ASN.1 schemas
 * @peculiar/x509 is built on) and signed with node's crypto. Not @peculiar/x509 itself: its
 * dependency container (tsyringe, reflect-metadata) took ~600 ms to load and ~10 MB of a
 * proxy's RSS for one CSR a day. Loaded with `import()` on first use, so a proxy whose agent
 * has no CA loads none of it.
 */
import { CertificationRequest, CertificationRequestInfo, Attributes } from '@peculiar/asn1-csr';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  Attribute,
  AttributeTypeAndValue,
  AttributeValue,
  Extension,
  Extensions,
  GeneralName,
  id_ce_subjectAltName,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
} from '@peculiar/asn1-x509';
import { generateKeyPair, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

/** PKCS#9 extensionRequest (RFC 2985 5.4.2): the CSR attribute carrying the wanted extensions. */
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
/** ecdsa-with-SHA256 (RFC 5758 3.2). */
const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
/** commonName (X.520). */
const COMMON_NAME = '2.5.4.3';

const generateEcKeyPair = promisify(generateKeyPair);

/** A fresh key and a CSR for it. The key is PKCS#8 PEM, for `tls.createSecureContext`. */
export interface KeyAndCsr {
  /** The private key. MUST stay in memory: never logged, dumped, sent or written to disk. */
  readonly keyPem: string;
  readonly csrPem: string;
}

/** DER as PEM with `label` (RFC 7468: base64 in lines of 64). */
export const derToPem = (label: string, der: ArrayBuffer | Uint8Array): string =>
  `-----BEGIN ${label}-----\n${(
    Buffer.from(
      der instanceof ArrayBuffer
        ? der
        : der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength),
    )
      .toString('base64')
      .match(/.{1,64}/g) ?? []
  ).join('\n')}\n-----END ${label}-----\n`;

/** A fresh EC P-256 key pair (node's KeyObjects). */
async function p256(): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  return generateEcKeyPair('ec', { namedCurve: 'P-256' });
}

/**
 * Makes a key and a CSR whose subject is `CN=<service>` and whose URI SAN is the SPIFFE ID
 * (the agent decides the leaf's names; it uses only the CSR's public key).
 */
export async function createKeyAndCsr(spiffeId: string, service: string): Promise<KeyAndCsr> {
  const { publicKey, privateKey } = await p256();
  const san = new SubjectAlternativeName([
    new GeneralName({ uniformResourceIdentifier: spiffeId }),
  ]);
  const extensions = new Extensions([
    new Extension({
      extnID: id_ce_subjectAltName,
      critical: false,
      extnValue: new OctetString(AsnConvert.serialize(san)),
    }),
  ]);
  const info = new CertificationRequestInfo({
    subject: new Name([
      new RelativeDistinguishedName([
        new AttributeTypeAndValue({
          type: COMMON_NAME,
          value: new AttributeValue({ utf8String: service }),
        }),
      ]),
    ]),
    subjectPKInfo: AsnConvert.parse(
      publicKey.export({ type: 'spki', format: 'der' }),
      SubjectPublicKeyInfo,
    ),
    attributes: new Attributes([
      new Attribute({ type: EXTENSION_REQUEST, values: [AsnConvert.serialize(extensions)] }),
    ]),
  });
  const tbs = Buffer.from(AsnConvert.serialize(info));
  // node signs ECDSA as the DER ECDSA-Sig-Value X.509 and PKCS#10 carry (dsaEncoding 'der').
  const signature = sign('sha256', tbs, privateKey);
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    certificationRequestInfoRaw: tbs.buffer.slice(tbs.byteOffset, tbs.byteOffset + tbs.byteLength),
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }),
    signature: signature.buffer.slice(
      signature.byteOffset,
      signature.byteOffset + signature.byteLength,
    ),
  });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return { keyPem, csrPem: derToPem('CERTIFICATE REQUEST', AsnConvert.serialize(csr)) };
}
