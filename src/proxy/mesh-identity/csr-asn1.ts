/**
 * @module The ASN.1 of a proxy's PKCS#10 certificate signing request (RFC 2986) for its SPIFFE
 * ID, encoded with @peculiar/asn1-csr and @peculiar/asn1-x509 (the schemas @peculiar/x509 is
 * built on). It never sees a private key: it encodes the request info around a public key, and
 * the request around a signature made elsewhere (csr.ts). Loading these packages costs a
 * process ~12 MiB that it never gives back, so a proxy runs this module in a short-lived child
 * process (csr-process.ts); tests and tools may run it in process.
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

/** PKCS#9 extensionRequest (RFC 2985 5.4.2): the CSR attribute carrying the wanted extensions. */
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
/** ecdsa-with-SHA256 (RFC 5758 3.2). */
const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
/** commonName (X.520). */
const COMMON_NAME = '2.5.4.3';

/** A request being encoded: the info to sign, then the request around its signature. */
export interface CsrDraft {
  /** DER of the CertificationRequestInfo: what the key signs. */
  readonly info: Uint8Array;
  /** DER of the CertificationRequest: the info, ecdsa-with-SHA256 and `signature` (DER). */
  signed(signature: Uint8Array): Uint8Array;
}

const arrayBuffer = (b: Uint8Array): ArrayBuffer =>
  b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

/**
 * The request info whose subject is `CN=<service>` and whose URI SAN is the SPIFFE ID (the agent
 * decides the leaf's names; it uses only the CSR's public key), around the public key `spkiDer`
 * (node's `export({ type: 'spki', format: 'der' })`).
 */
export function draftCsr(spiffeId: string, service: string, spkiDer: Uint8Array): CsrDraft {
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
  const requestInfo = new CertificationRequestInfo({
    subject: new Name([
      new RelativeDistinguishedName([
        new AttributeTypeAndValue({
          type: COMMON_NAME,
          value: new AttributeValue({ utf8String: service }),
        }),
      ]),
    ]),
    subjectPKInfo: AsnConvert.parse(arrayBuffer(spkiDer), SubjectPublicKeyInfo),
    attributes: new Attributes([
      new Attribute({ type: EXTENSION_REQUEST, values: [AsnConvert.serialize(extensions)] }),
    ]),
  });
  const info = new Uint8Array(AsnConvert.serialize(requestInfo));
  return {
    info,
    signed: (signature) =>
      new Uint8Array(
        AsnConvert.serialize(
          new CertificationRequest({
            certificationRequestInfo: requestInfo,
            certificationRequestInfoRaw: arrayBuffer(info),
            signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }),
            signature: arrayBuffer(signature),
          }),
        ),
      ),
  };
}
