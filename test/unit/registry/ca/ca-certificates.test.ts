/**
 * The CA's certificate work (issue 20): roots, CSR verification and leaf signing, checked with
 * node's own X509Certificate; fast-check on CSR parsing (any string, any corruption of a valid
 * CSR: a VALIDATION error on `csr` or a leaf, never anything else).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { isMeshError, ERROR_CODES } from '../../../../src/core/errors.js';
import {
  createRoot,
  MAX_CSR_PEM_BYTES,
  randomSerial,
  rootSigner,
  signLeaf,
  verifyCsr,
  type RootMaterial,
  type RootSigner,
} from '../../../../src/registry/ca/ca-certificates.js';
import { makeCsr, type TestCsr } from '../../../helpers/ca.js';

const SEED = 20;
const HOUR_MS = 3_600_000;
const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
const ID = 'spiffe://cluster.local/ns/default/sa/orders';

/** The error `fn` throws: it must be a VALIDATION error on field `csr`. */
function csrRefusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isMeshError(err, ERROR_CODES.VALIDATION), String(err));
    assert.equal(err.details?.field, 'csr');
    return err.message;
  }
  return assert.fail('accepted');
}

const der = (pem: string): Buffer =>
  Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
const csrPem = (bytes: Uint8Array): string =>
  `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(bytes).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;

describe('CA certificates', () => {
  let root: RootMaterial;
  let signer: RootSigner;
  let csr: TestCsr;
  before(async () => {
    root = await createRoot({
      trustDomain: 'cluster.local',
      nowMs: NOW,
      lifetimeMs: 87_600 * HOUR_MS,
    });
    signer = rootSigner(root);
    csr = await makeCsr();
  });

  it('makes a self-signed EC P-256 root: CA, certificate signing, the trust domain as its SAN', () => {
    const cert = new X509Certificate(root.certPem);
    assert.equal(cert.ca, true);
    assert.equal(cert.verify(cert.publicKey), true);
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(cert.subjectAltName, 'URI:spiffe://cluster.local');
    assert.equal(cert.fingerprint256.replaceAll(':', '').toLowerCase(), root.id);
    assert.equal(Date.parse(cert.validFrom), NOW - 60_000);
    assert.equal(Date.parse(cert.validTo), NOW + 87_600 * HOUR_MS);
    assert.match(root.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('signs a leaf that verifies against the root, the SPIFFE ID its only SAN, for both EKUs', () => {
    const leaf = signLeaf({
      signer,
      csr: verifyCsr(csr.pem),
      spiffeId: ID,
      commonName: 'orders',
      nowMs: NOW,
      ttlMs: 24 * HOUR_MS,
    });
    const cert = new X509Certificate(leaf.certPem);
    const ca = new X509Certificate(root.certPem);
    assert.equal(cert.verify(ca.publicKey), true);
    assert.equal(cert.checkIssued(ca), true);
    assert.equal(cert.subjectAltName, `URI:${ID}`);
    assert.equal(cert.subject, 'CN=orders');
    assert.equal(cert.ca, false);
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(Date.parse(cert.validFrom), NOW - 60_000);
    assert.equal(Date.parse(cert.validTo), NOW + 24 * HOUR_MS);
    assert.equal(leaf.notBeforeMs, NOW - 60_000);
    assert.equal(leaf.notAfterMs, NOW + 24 * HOUR_MS);
    assert.equal(cert.serialNumber, leaf.serial.toUpperCase());
  });

  it('never signs past the root: a leaf asked to outlive it ends with it', async () => {
    const short = rootSigner(
      await createRoot({ trustDomain: 'cluster.local', nowMs: NOW, lifetimeMs: HOUR_MS }),
    );
    const leaf = signLeaf({
      signer: short,
      csr: verifyCsr(csr.pem),
      spiffeId: ID,
      commonName: 'orders',
      nowMs: NOW,
      ttlMs: 24 * HOUR_MS,
    });
    assert.equal(leaf.notAfterMs, short.root.notAfterMs);
    assert.equal(Date.parse(new X509Certificate(leaf.certPem).validTo), short.root.notAfterMs);
  });

  it('gives each leaf a random positive 128-bit serial', () => {
    const serials = new Set(Array.from({ length: 1000 }, () => randomSerial()));
    assert.equal(serials.size, 1000);
    for (const s of serials) assert.match(s, /^[4-7][0-9a-f]{31}$/);
  });

  it('accepts EC P-256 and RSA 2048 CSRs', async () => {
    assert.equal(verifyCsr(csr.pem).keyDescription, 'ec P-256');
    assert.equal(verifyCsr((await makeCsr({ key: 'rsa-2048' })).pem).keyDescription, 'rsa 2048');
  });

  it('refuses other keys, a bad signature, and what is not a CSR', async () => {
    const p384 = (await makeCsr({ key: 'ec-p384' })).pem;
    assert.match(
      csrRefusal(() => verifyCsr(p384)),
      /^csr: key must be EC P-256 or RSA .*ec secp384r1/,
    );
    const rsa1024 = (await makeCsr({ key: 'rsa-1024' })).pem;
    assert.match(
      csrRefusal(() => verifyCsr(rsa1024)),
      /rsa 1024/,
    );
    // The last byte of the signature flipped: the request no longer verifies.
    const bytes = der(csr.pem);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x01;
    assert.match(
      csrRefusal(() => verifyCsr(csrPem(bytes))),
      /^csr: signature does not verify$/,
    );
    // Another key's request with this one's signature.
    const other = der((await makeCsr()).pem);
    const own = der(csr.pem);
    const spliced = Buffer.concat([
      other.subarray(0, other.length - 72),
      own.subarray(own.length - 72),
    ]);
    csrRefusal(() => verifyCsr(csrPem(spliced)));
    assert.equal(
      csrRefusal(() => verifyCsr('hello')),
      'csr: not a PEM certificate request',
    );
    assert.equal(
      csrRefusal(() => verifyCsr(root.certPem)),
      'csr: not a PEM certificate request',
    );
    assert.match(
      csrRefusal(() => verifyCsr('x'.repeat(MAX_CSR_PEM_BYTES + 1))),
      /at most/,
    );
  });

  it('answers any string with a leaf or a VALIDATION error on csr, never anything else', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc
            .string({ maxLength: 300 })
            .map(
              (body) =>
                `-----BEGIN CERTIFICATE REQUEST-----\n${body}\n-----END CERTIFICATE REQUEST-----`,
            ),
          fc.uint8Array({ maxLength: 400 }).map((b) => csrPem(b)),
        ),
        (text) => {
          try {
            verifyCsr(text);
          } catch (err) {
            assert.ok(isMeshError(err, ERROR_CODES.VALIDATION), String(err));
            assert.equal(err.details?.field, 'csr');
          }
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('refuses every corruption of a valid CSR as a VALIDATION error, or signs the intact key', () => {
    const bytes = der(csr.pem);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.nat({ max: bytes.length }),
        (flips, cut) => {
          const mutated = Buffer.from(bytes.subarray(0, Math.max(cut, bytes.length - 3)));
          for (const [at, mask] of flips)
            if (at < mutated.length) mutated[at] = (mutated[at] as number) ^ mask;
          try {
            const verified = verifyCsr(csrPem(mutated));
            // A change the signature does not cover (DER slack in the outer wrapper) may pass:
            // then the key must still be the CSR's own.
            const leaf = signLeaf({
              signer,
              csr: verified,
              spiffeId: ID,
              commonName: 'orders',
              nowMs: NOW,
              ttlMs: HOUR_MS,
            });
            const ownKey = new X509Certificate(
              signLeaf({
                signer,
                csr: verifyCsr(csr.pem),
                spiffeId: ID,
                commonName: 'orders',
                nowMs: NOW,
                ttlMs: HOUR_MS,
              }).certPem,
            ).publicKey;
            assert.ok(new X509Certificate(leaf.certPem).publicKey.equals(ownKey));
          } catch (err) {
            assert.ok(isMeshError(err, ERROR_CODES.VALIDATION), String(err));
            assert.equal(err.details?.field, 'csr');
          }
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });
});
