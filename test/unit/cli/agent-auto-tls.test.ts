/**
 * The agent's own HTTPS certificate (tls.auto): issued at start, renewed at 60-90% of its
 * lifetime (fake time) and when the roots change, each renewal swapped into the listener.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import type { Server as HttpsServer } from 'node:https';
import { describe, it, mock } from 'node:test';
import type { SecureContextOptions } from 'node:tls';
import { silentLogger } from '../../../src/core/logger.js';
import { startAutoTls } from '../../../src/cli/agent-auto-tls.js';
import type { LeafSigning, MeshCa } from '../../../src/registry/ca/mesh-ca.js';

const LIFETIME_MS = 10_000;

/** A CA that records what it was asked to sign and answers a leaf valid for LIFETIME_MS. */
function fakeCa(): { ca: MeshCa; signed: LeafSigning[]; rotate(): void } {
  const signed: LeafSigning[] = [];
  const listeners = new Set<() => void>();
  const ca = {
    signLeaf: (request: LeafSigning) => {
      signed.push(request);
      return {
        certPem: `cert ${signed.length}`,
        rootId: 'r',
        spiffeId: 'spiffe://cluster.local/ns/default/sa/meshwork-agent',
        serial: String(signed.length),
        notBefore: new Date(Date.now()).toISOString(),
        notAfter: new Date(Date.now() + LIFETIME_MS).toISOString(),
      };
    },
    onChange: (listener: () => void) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  } as unknown as MeshCa;
  return { ca, signed, rotate: () => listeners.forEach((l) => l()) };
}

/**
 * Lets the key generation (real webcrypto, off the mocked timers) finish, within 10 s of real
 * time (performance.now is not mocked).
 */
async function until(done: () => boolean): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!done() && performance.now() < deadline) await new Promise((r) => setImmediate(r));
  assert.ok(done(), 'condition not reached in 10 s');
}

describe('startAutoTls', () => {
  it('issues at start, renews at 60-90% of the lifetime and when the roots change, swapping each in', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
    try {
      const { ca, signed, rotate } = fakeCa();
      const swapped: SecureContextOptions[] = [];
      const server = { setSecureContext: (o: SecureContextOptions) => swapped.push(o) };
      // random 0.5: renewal at 0.6 + 0.3 * 0.5 = 75% of the lifetime.
      const tls = await startAutoTls({
        ca,
        hosts: ['127.0.0.1', 'localhost'],
        logger: silentLogger,
        random: () => 0.5,
      });
      tls.attach(server as unknown as HttpsServer, { ca: 'client-ca', requestCert: true });
      assert.equal(signed.length, 1);
      assert.deepEqual(signed[0]?.hosts, ['127.0.0.1', 'localhost']);
      assert.equal(signed[0]?.service, 'meshwork-agent');
      assert.match(signed[0]?.csr ?? '', /^-----BEGIN CERTIFICATE REQUEST-----/);
      assert.equal(tls.current().cert, 'cert 1');
      assert.match(tls.current().key, /^-----BEGIN PRIVATE KEY-----/);

      mock.timers.tick(LIFETIME_MS * 0.75 - 1);
      await new Promise((r) => setImmediate(r));
      assert.equal(signed.length, 1, 'not before 75% of the lifetime');
      mock.timers.tick(1);
      await until(() => swapped.length === 1);
      assert.equal(signed.length, 2);
      assert.deepEqual(swapped[0], {
        ca: 'client-ca',
        requestCert: true,
        cert: 'cert 2',
        key: tls.current().key,
      });

      rotate();
      await until(() => swapped.length === 2);
      assert.equal(swapped[1]?.cert, 'cert 3');

      tls.close();
      mock.timers.tick(LIFETIME_MS);
      rotate();
      await new Promise((r) => setImmediate(r));
      assert.equal(signed.length, 3, 'nothing after close');
    } finally {
      mock.timers.reset();
    }
  });
});
