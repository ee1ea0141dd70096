import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { certificateIdentity, uriSans } from '../../../src/proxy/mesh-tls.js';
import { createTestCa } from '../../helpers/test-ca.js';

/** node's rule (crypto_common.cc IsSafeAltName, IA5 strings): these values are written quoted. */
const UNSAFE = /["\\,']|[^\x20-\x7e]/;

/** A `subjectaltname` string as node writes it. */
function format(entries: readonly (readonly [string, string])[]): string {
  return entries
    .map(([type, value]) => `${type}:${UNSAFE.test(value) ? JSON.stringify(value) : value}`)
    .join(', ');
}

const entry = fc.tuple(
  fc.constantFrom('URI', 'DNS', 'IP Address', 'email'),
  fc.string({ unit: fc.constantFrom('a', 'b', '/', ':', ',', ' ', '"', '\\', "'", '\n', 'é') }),
);

describe('uriSans', () => {
  it('reads back every URI of a subjectaltname string as node writes it, quoted values included', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 6 }), (entries) => {
        assert.deepEqual(
          uriSans(format(entries)),
          entries.filter(([type]) => type === 'URI').map(([, value]) => value),
        );
      }),
      { numRuns: 2_000, seed: 20 },
    );
  });

  it('never throws, whatever the string', () => {
    fc.assert(
      fc.property(fc.string(), (s) => void uriSans(s)),
      { numRuns: 2_000, seed: 21 },
    );
    assert.deepEqual(uriSans(undefined), []);
    assert.deepEqual(uriSans('URI:"unterminated'), []);
  });

  it("reads node's own rendering of a real certificate's SANs, a comma inside a URI included", async () => {
    const ca = await createTestCa();
    const weird = 'spiffe://cluster.local/ns/default/sa/we,ird';
    const leaf = await ca.leaf(weird, { dnsNames: ['localhost'] });
    const san = new X509Certificate(leaf.certPem).subjectAltName;
    assert.deepEqual(uriSans(san), [weird]);
  });
});

describe('certificateIdentity', () => {
  const cert = (subjectaltname: string) => ({ subjectaltname }) as PeerCertificate;

  it('gives the SPIFFE ID, its principal and namespace', () => {
    assert.deepEqual(
      certificateIdentity(cert('DNS:localhost, URI:spiffe://cluster.local/ns/shop/sa/orders')),
      {
        mtls: true,
        spiffeId: 'spiffe://cluster.local/ns/shop/sa/orders',
        principal: 'cluster.local/ns/shop/sa/orders',
        namespace: 'shop',
      },
    );
  });

  it('marks a verified certificate without a SPIFFE ID as mTLS with no principal', () => {
    assert.deepEqual(certificateIdentity(cert('URI:https://example.com/x')), { mtls: true });
    assert.deepEqual(certificateIdentity(undefined), { mtls: true });
  });
});
