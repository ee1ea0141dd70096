// A proxy's CSR (issue 20), encoded in a short-lived child process so that the ASN.1 packages'
// memory leaves with it: the CSR is the same as one encoded in process and the CA takes it; the
// child is gone once it is made; a child that dies or answers garbage fails the CSR clearly.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  createKeyAndCsr,
  encodeInChildProcess,
  encodeInProcess,
  type CsrEncoder,
} from '../../../../src/proxy/mesh-identity/csr.js';
import { verifyCsr } from '../../../../src/registry/ca/ca-certificates.js';

const ORDERS = 'spiffe://cluster.local/ns/default/sa/orders';

/** Whether process `pid` still exists. */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('CSR encoding in a child process', () => {
  it('encodes the same request info as in process, and the CA verifies the CSR made with it', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const child = await encodeInChildProcess(ORDERS, 'orders', spki);
    const here = await encodeInProcess(ORDERS, 'orders', spki);
    try {
      assert.deepEqual(Buffer.from(child.info), Buffer.from(here.info));
    } finally {
      child.close();
      here.close();
    }
    const made = await createKeyAndCsr(ORDERS, 'orders', encodeInChildProcess);
    const csr = verifyCsr(made.csrPem);
    assert.deepEqual(
      Buffer.from(AsnConvert.serialize(csr.publicKeyInfo)),
      createPublicKey(made.keyPem).export({ type: 'spki', format: 'der' }),
      'the CSR carries the key made in this process',
    );
  });

  it('leaves no process behind once the CSR is made, or when it is not', async () => {
    const pids: number[] = [];
    const watched: CsrEncoder = async (spiffeId, service, spki) => {
      const encoding = await encodeInChildProcess(spiffeId, service, spki);
      assert.ok(encoding.pid !== undefined && alive(encoding.pid));
      pids.push(encoding.pid);
      return encoding;
    };
    await createKeyAndCsr(ORDERS, 'orders', watched);
    // Closed without signing (the signature step failed): the child goes too.
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    (await watched(ORDERS, 'orders', publicKey.export({ type: 'spki', format: 'der' }))).close();
    assert.equal(pids.length, 2);
    const deadline = Date.now() + 10_000;
    while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    assert.deepEqual(pids.filter(alive), []);
  });

  it('fails clearly when the child dies before it answers', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const encoding = await encodeInChildProcess(
      ORDERS,
      'orders',
      publicKey.export({ type: 'spki', format: 'der' }),
    );
    process.kill(encoding.pid as number, 'SIGKILL');
    await assert.rejects(
      encoding.signed(new Uint8Array([0x30, 0])),
      /the CSR encoder process ended \(SIGKILL\) before answering/,
    );
    encoding.close();
  });

  it('fails clearly when the child cannot encode (a public key that is not one)', async () => {
    await assert.rejects(
      encodeInChildProcess(ORDERS, 'orders', new Uint8Array([1, 2, 3])),
      /the CSR encoder failed: /,
    );
  });

  it('runs from source in a process started outside the repository (tsx found from csr.ts)', async () => {
    // A bare `--import tsx` in the child resolved tsx from the cwd, so a tsx process started
    // elsewhere failed every CSR.
    const csr = new URL('../../../../src/proxy/mesh-identity/csr.ts', import.meta.url).href;
    const script = `const { createKeyAndCsr } = await import(${JSON.stringify(csr)});
      const made = await createKeyAndCsr(${JSON.stringify(ORDERS)}, 'orders');
      process.stdout.write(made.csrPem);`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', script],
      { cwd: tmpdir(), timeout: 60_000 },
    );
    assert.match(stdout, /^-----BEGIN CERTIFICATE REQUEST-----/);
    verifyCsr(stdout); // throws unless the CSR is well formed and signed by its key
  });
});
