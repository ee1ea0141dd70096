/**
 * @module Unit tests of the proxies' mesh identity manager (issue 20), as the sidecar runs it: the first leaf at start (no
 * CA, no agent, refusals), renewal between 60% and 90% of the lifetime, retries that keep the
 * old leaf, rotation (a new bundle at once, a new leaf from a new root), and the key kept out of
 * every log line and dump. A fake CA client signs with a real test CA on a FakeClock's time.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { MeshError, isMeshError } from '../../../../src/core/errors.js';
import type { LogFields, Logger } from '../../../../src/core/logger.js';
import type {
  CaRootsResponse,
  LeafSignRequest,
  LeafSignResponse,
} from '../../../../src/protocol/mesh/ca.js';
import type { SnapshotTrust } from '../../../../src/protocol/mesh/snapshot.js';
import {
  createKeyAndCsr,
  derToPem,
  encodeInProcess,
} from '../../../../src/proxy/mesh-identity/csr.js';
import {
  checkLeaf,
  renewalDelayMs,
  startMeshIdentity,
  startMeshMtls,
  type CaClient,
  type MeshIdentity,
  type MeshIdentityOptions,
} from '../../../../src/proxy/mesh-identity/mesh-identity.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';
import { seededRandom } from '../../../helpers/seeded-random.js';
import {
  createTestLeaf,
  createTestRoot,
  mtlsHandshake,
  reissueTestLeaf,
  signTestCsr,
  type LeafValidity,
  type TestRoot,
} from '../../../helpers/identity-ca.js';
import { until } from '../../../helpers/until.js';

const HOUR_MS = 3_600_000;
const ORDERS = 'spiffe://cluster.local/ns/default/sa/orders';

const httpError = (status: number, message = `HTTP ${status}`): MeshError =>
  new MeshError('MESHWORK_ERR_CLIENT_REQUEST_FAILED', message, {
    retryable: status >= 500,
    details: { status },
  });

/** A CA client backed by real test roots, signing on the fake clock's time. */
class FakeCaClient implements CaClient {
  roots: TestRoot[];
  active: TestRoot;
  lifetimeMs = 24 * HOUR_MS;
  /** Each call to signLeaf/caRoots takes the next failure, if any. */
  signFailures: MeshError[] = [];
  rootsFailures: MeshError[] = [];
  signed: LeafSignResponse[] = [];
  requests: LeafSignRequest[] = [];
  /** The fake clock's time of each caSignLeaf call. */
  requestedAt: number[] = [];
  rootsCalls = 0;
  /** Overrides what caSignLeaf answers (a wrong leaf). */
  tamper: ((res: LeafSignResponse) => Promise<LeafSignResponse>) | undefined;

  constructor(
    readonly clock: FakeClock,
    root: TestRoot,
  ) {
    this.roots = [root];
    this.active = root;
  }

  get bundlePem(): string {
    return this.roots.map((r) => r.certPem).join('');
  }

  /** What a snapshot's `ca` carries now. */
  trust(): SnapshotTrust {
    return {
      trustDomain: 'cluster.local',
      bundlePem: this.bundlePem,
      activeRootId: this.active.id,
    };
  }

  caRoots(): Promise<CaRootsResponse> {
    this.rootsCalls++;
    const failure = this.rootsFailures.shift();
    if (failure !== undefined) return Promise.reject(failure);
    return Promise.resolve({
      trustDomain: 'cluster.local',
      activeRootId: this.active.id,
      roots: this.roots.map((r) => ({
        id: r.id,
        certPem: r.certPem,
        notBefore: r.cert.notBefore.toISOString(),
        notAfter: r.cert.notAfter.toISOString(),
        active: r === this.active,
      })),
      bundlePem: this.bundlePem,
    });
  }

  async caSignLeaf(req: LeafSignRequest): Promise<LeafSignResponse> {
    this.requests.push(req);
    this.requestedAt.push(this.clock.now());
    const failure = this.signFailures.shift();
    if (failure !== undefined) throw failure;
    const id = `spiffe://cluster.local/ns/${req.namespace ?? 'default'}/sa/${req.service}`;
    const notBefore = new Date(this.clock.now());
    const leaf = await signTestCsr(this.active, req.csr, id, {
      notBefore,
      notAfter: new Date(notBefore.getTime() + this.lifetimeMs),
    });
    let res: LeafSignResponse = {
      certPem: leaf.certPem,
      rootId: leaf.rootId,
      spiffeId: id,
      serial: leaf.serial,
      notBefore: leaf.notBefore.toISOString(),
      notAfter: leaf.notAfter.toISOString(),
    };
    if (this.tamper !== undefined) res = await this.tamper(res);
    this.signed.push(res);
    return res;
  }
}

/** A logger that keeps every line (fields inspected deeply: errors, causes and all). */
function capturingLogger(): Logger & { lines: { level: string; msg: string; text: string }[] } {
  const lines: { level: string; msg: string; text: string }[] = [];
  const make = (bindings: LogFields): Logger => {
    const at =
      (level: string) =>
      (fields: LogFields, msg: string): void => {
        lines.push({ level, msg, text: inspect({ ...bindings, ...fields, msg }, { depth: 20 }) });
      };
    return {
      error: at('error'),
      warn: at('warn'),
      info: at('info'),
      debug: at('debug'),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return Object.assign(make({}), { lines });
}

/** A CSR maker that encodes in this process (see setup). */
const inProcessCsr: MeshIdentityOptions['makeCsr'] = (id, service) =>
  createKeyAndCsr(id, service, encodeInProcess);

async function setup(
  over: Partial<MeshIdentityOptions> = {},
  lifetimeMs = 24 * HOUR_MS,
  startMs?: number,
): Promise<{
  clock: FakeClock;
  client: FakeCaClient;
  logger: ReturnType<typeof capturingLogger>;
  metrics: Registry;
  options: MeshIdentityOptions;
}> {
  const clock = new FakeClock(startMs);
  const client = new FakeCaClient(clock, await createTestRoot());
  client.lifetimeMs = lifetimeMs;
  const logger = capturingLogger();
  const metrics = new Registry();
  const options: MeshIdentityOptions = {
    component: 'sidecar',
    service: 'orders',
    namespace: 'default',
    client,
    logger,
    clock,
    metrics,
    random: seededRandom(7),
    // In process: a child per CSR (the proxy's default) costs ~0.2-1 s each, and most tests here
    // make several; the first test of startMeshIdentity keeps the default, and csr.test.ts tests
    // the child itself.
    makeCsr: inProcessCsr,
    ...over,
  };
  return { clock, client, logger, metrics, options };
}

async function started(options: MeshIdentityOptions): Promise<MeshIdentity> {
  const r = await startMeshIdentity(options, 10_000);
  assert.equal(r.state, 'on');
  return (r as { identity: MeshIdentity }).identity;
}

/**
 * Moves the fake clock `stepMs` at a time until `done()`, but only while the code under test is
 * idle (a timer of its is pending): signing is real crypto, and time must not run on during it.
 */
async function driveUntil(clock: FakeClock, stepMs: number, done: () => boolean, what: string) {
  const deadline = Date.now() + 20_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not ${what} after 20 s`);
    if (clock.pendingTimers > 0) clock.advance(stepMs);
    await new Promise((r) => setImmediate(r));
  }
}

/** Advances the fake clock to the identity's next planned signing. */
const toNextSigning = (clock: FakeClock, identity: MeshIdentity): void =>
  clock.advance(Date.parse(identity.info()!.nextSigningAt!) - clock.now());

const metric = async (metrics: Registry, line: RegExp): Promise<number> => {
  const m = line.exec(await metrics.metrics());
  return m === null ? Number.NaN : Number(m[1]);
};

describe('renewalDelayMs', () => {
  it('lands between 60% and 90% of the lifetime, whatever the random value', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 1, max: 10 * 365 * 24 * HOUR_MS }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (notBefore, lifetime, r) => {
          const d = renewalDelayMs(notBefore, notBefore + lifetime, notBefore, r);
          assert.ok(d >= Math.floor(0.6 * lifetime) && d <= Math.ceil(0.9 * lifetime), `${d}`);
        },
      ),
    );
  });

  it('counts from now, and is 0 once that point is past', () => {
    assert.equal(renewalDelayMs(0, 1000, 100, 0), 500);
    assert.equal(renewalDelayMs(0, 1000, 950, 0.5), 0);
  });

  it('spreads sidecars started together over the whole window (uniform, 4 sigma)', () => {
    const random = seededRandom(42);
    const n = 10_000;
    const buckets = [0, 0, 0];
    for (let i = 0; i < n; i++) {
      const d = renewalDelayMs(0, 3_000, 0, random());
      buckets[Math.min(2, Math.floor((d - 1_800) / 300))]! += 1;
    }
    const sigma = Math.sqrt(n * (1 / 3) * (2 / 3));
    for (const b of buckets) assert.ok(Math.abs(b - n / 3) < 4 * sigma, `${buckets.join(',')}`);
  });
});

describe('startMeshIdentity', () => {
  it('gets a leaf for the SPIFFE ID of its service and namespace, from the active root', async () => {
    // The proxy's own CSR maker (csr.ts, its CSR encoded in a child process).
    const { client, options } = await setup({ namespace: 'shop', makeCsr: undefined });
    const identity = await started(options);
    assert.equal(identity.spiffeId, 'spiffe://cluster.local/ns/shop/sa/orders');
    assert.equal(identity.trustDomain, 'cluster.local');
    assert.deepEqual(
      client.requests.map((r) => [r.service, r.namespace]),
      [['orders', 'shop']],
    );
    assert.match(client.requests[0]!.csr, /^-----BEGIN CERTIFICATE REQUEST-----/);
    const info = identity.info()!;
    assert.equal(info.serial, client.signed[0]!.serial);
    assert.equal(info.rootId, client.active.id);
    assert.equal(info.notAfter, client.signed[0]!.notAfter.replace(/\.\d+Z$/, '.000Z'));
    assert.equal(identity.bundlePem(), client.bundlePem);
    identity.close();
  });

  it('makes a new key for every leaf', async () => {
    const { client, clock, options } = await setup();
    const identity = await started(options);
    await driveUntil(clock, 60_000, () => client.signed.length === 2, 'renewed');
    const spki = (pem: string) =>
      new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
    assert.notDeepEqual(spki(client.signed[0]!.certPem), spki(client.signed[1]!.certPem));
    identity.close();
  });

  it('answers no-ca when the agent has no CA (404 on the roots)', async () => {
    const { client, options } = await setup();
    client.rootsFailures.push(httpError(404, 'route not found'));
    assert.deepEqual(await startMeshIdentity(options, 10_000), { state: 'no-ca' });
    assert.equal(client.requests.length, 0);
  });

  it('retries an agent that is away, and answers unreachable after the wait', async () => {
    const { client, clock, options } = await setup();
    for (let i = 0; i < 1_000; i++) client.rootsFailures.push(httpError(503));
    let result: unknown;
    void startMeshIdentity(options, 30_000).then((r) => (result = r));
    await driveUntil(clock, 500, () => result !== undefined, 'given up');
    assert.equal((result as { state: string }).state, 'unreachable');
    assert.ok(client.rootsCalls >= 5 && client.rootsCalls <= 40, `${client.rootsCalls} calls`);
    assert.ok(clock.monotonicMs() >= 30_000 && clock.monotonicMs() <= 31_000);
  });

  it('retries until the agent answers within the wait, then signs', async () => {
    const { client, clock, options } = await setup();
    client.rootsFailures.push(httpError(503), httpError(503));
    client.signFailures.push(httpError(500));
    let result: unknown;
    void startMeshIdentity(options, 30_000).then((r) => (result = r));
    await driveUntil(clock, 200, () => result !== undefined, 'started');
    assert.equal((result as { state: string }).state, 'on');
    assert.equal(client.rootsCalls, 3);
    assert.equal(client.requests.length, 2);
    (result as { identity: MeshIdentity }).identity.close();
  });

  it('fails at once when the CA refuses the token (403), naming the SPIFFE ID', async () => {
    const { client, options } = await setup();
    client.signFailures.push(httpError(403, 'Permission denied: service:orders write'));
    await assert.rejects(startMeshIdentity(options, 10_000), (err: unknown) => {
      assert.ok(isMeshError(err, 'MESHWORK_ERR_SIDECAR_IDENTITY'));
      assert.equal(err.retryable, false);
      assert.match(err.message, /ns\/default\/sa\/orders.*service:orders write/);
      return true;
    });
    assert.equal(client.requests.length, 1);
  });

  it('refuses a leaf for another service, another key, or from a root it does not trust', async () => {
    const other = await createTestRoot();
    const cases: [
      string,
      (res: LeafSignResponse, root: TestRoot) => Promise<LeafSignResponse>,
      RegExp,
    ][] = [
      [
        'another SPIFFE ID in the answer',
        (res) => Promise.resolve({ ...res, spiffeId: 'spiffe://cluster.local/ns/default/sa/x' }),
        /for spiffe:\/\/cluster.local\/ns\/default\/sa\/x, not/,
      ],
      [
        'another URI SAN in the certificate',
        async (res, root) => ({
          ...res,
          certPem: (await reissueTestLeaf(root, res.certPem, 'spiffe://evil/ns/a/sa/b')).certPem,
        }),
        /URI SAN is spiffe:\/\/evil\/ns\/a\/sa\/b, not/,
      ],
      [
        'another key',
        async (res, root) => {
          const { csrPem } = await createKeyAndCsr(ORDERS, 'orders', encodeInProcess);
          return { ...res, certPem: (await signTestCsr(root, csrPem, ORDERS)).certPem };
        },
        /another key/,
      ],
      [
        'a root outside the bundle',
        async (res) => ({
          ...res,
          certPem: (await reissueTestLeaf(other, res.certPem, ORDERS)).certPem,
        }),
        /no root of the trust bundle/,
      ],
      [
        'no certificate',
        (res) => Promise.resolve({ ...res, certPem: 'not a certificate' }),
        /certPem is not a certificate/,
      ],
    ];
    for (const [what, tamper, message] of cases) {
      const { client, options } = await setup();
      client.tamper = (res) => tamper(res, client.active);
      await assert.rejects(
        startMeshIdentity(options, 10_000),
        (err: unknown) =>
          isMeshError(err, 'MESHWORK_ERR_SIDECAR_IDENTITY') &&
          err.retryable === false &&
          message.test(err.message),
        what,
      );
    }
  });

  it('fails when the CA keeps failing past the wait, though its roots answer', async () => {
    const { client, clock, options } = await setup();
    for (let i = 0; i < 1_000; i++) client.signFailures.push(httpError(503));
    let error: unknown;
    void startMeshIdentity(options, 20_000).catch((err: unknown) => (error = err));
    await driveUntil(clock, 500, () => error !== undefined, 'given up');
    assert.ok(isMeshError(error, 'MESHWORK_ERR_SIDECAR_IDENTITY'));
    assert.match((error as Error).message, /signed no leaf .* within 20000 ms/);
  });
});

/** Keys and CSRs made ahead (signing then costs no crypto on the clock's time). */
async function csrPool(
  n: number,
): Promise<{ make: MeshIdentityOptions['makeCsr']; keys: string[] }> {
  const made = await Promise.all(
    Array.from({ length: n }, () => createKeyAndCsr(ORDERS, 'orders', encodeInProcess)),
  );
  let i = 0;
  return {
    make: () => Promise.resolve(made[i++ % n]!),
    keys: made.map((m) => m.keyPem),
  };
}

describe('startMeshMtls', () => {
  const MTLS = { mtls: 'auto' as const, mtlsStartTimeoutMs: 3_000, registry: ['http://agent'] };

  it('off: never asks the CA, and says so', async () => {
    const { client, logger, options } = await setup();
    const r = await startMeshMtls({ ...MTLS, mtls: 'off' }, options);
    assert.deepEqual(r, { state: 'off', reason: 'mtls: off' });
    assert.equal(client.rootsCalls, 0);
    assert.ok(logger.lines.some((l) => l.level === 'info' && /mTLS off/.test(l.msg)));
  });

  it('auto: the identity in force when the agent has a CA', async () => {
    const { options } = await setup({ component: 'gateway', service: 'meshwork-gateway' });
    const r = await startMeshMtls(MTLS, options);
    assert.equal(r.state, 'on');
    const identity = (r as { identity: MeshIdentity }).identity;
    assert.equal(identity.spiffeId, 'spiffe://cluster.local/ns/default/sa/meshwork-gateway');
    identity.close();
  });

  it('auto, no CA at the agent (404): off, logged at info', async () => {
    const { client, logger, options } = await setup();
    client.rootsFailures.push(httpError(404, 'route not found'));
    assert.deepEqual(await startMeshMtls(MTLS, options), {
      state: 'off',
      reason: 'the agent has no CA',
    });
    assert.ok(logger.lines.some((l) => l.level === 'info' && /has no CA/.test(l.msg)));
  });

  it('auto, no agent within the wait: off, with a warning naming the wait', async () => {
    const { client, clock, logger, options } = await setup();
    for (let i = 0; i < 1_000; i++) client.rootsFailures.push(httpError(503, 'agent away'));
    let result: unknown;
    void startMeshMtls(MTLS, options).then((r) => (result = r));
    await driveUntil(clock, 500, () => result !== undefined, 'given up');
    assert.equal((result as { state: string }).state, 'off');
    assert.match((result as { reason: string }).reason, /^no agent answered within 3000 ms \(/);
    assert.ok(logger.lines.some((l) => l.level === 'warn' && /no agent answered/.test(l.msg)));
  });

  it('auto, the CA refuses the token: rejects with SIDECAR_IDENTITY', async () => {
    const { client, options } = await setup();
    client.signFailures.push(httpError(403, 'Permission denied: service:orders write'));
    await assert.rejects(startMeshMtls(MTLS, options), (err: unknown) =>
      isMeshError(err, 'MESHWORK_ERR_SIDECAR_IDENTITY'),
    );
  });
});

describe('MeshIdentity renewal', () => {
  it('renews at a point between 60% and 90% of the lifetime that the random source picks', async () => {
    const root = await createTestRoot();
    const pool = await csrPool(4);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 60, max: 2 * 24 * 3600 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        async (lifetimeS, r) => {
          const clock = new FakeClock();
          const client = new FakeCaClient(clock, root);
          client.lifetimeMs = lifetimeS * 1000;
          const options: MeshIdentityOptions = {
            component: 'sidecar',
            service: 'orders',
            namespace: 'default',
            client,
            logger: capturingLogger(),
            clock,
            random: () => r,
            makeCsr: pool.make,
          };
          const identity = await started(options);
          const t0 = clock.now();
          const lifetime = lifetimeS * 1000;
          const planned = Date.parse(identity.info()!.nextSigningAt!) - t0;
          assert.ok(
            planned >= 0.6 * lifetime && planned <= 0.9 * lifetime,
            `${planned} of ${lifetime}`,
          );
          assert.equal(planned, Math.floor(lifetime * (0.6 + 0.3 * r)));
          clock.advance(planned - 1);
          await new Promise((res) => setImmediate(res));
          assert.equal(client.requests.length, 1, 'renewed early');
          clock.advance(1);
          await until(() => client.signed.length === 2, 5_000, 'renewed when planned', 2);
          assert.equal(client.requestedAt[1]! - t0, planned);
          identity.close();
        },
      ),
      { numRuns: 40 },
    );
  });

  it('keeps the old leaf while the agent is away, retrying with growing backoff; then swaps', async () => {
    const pool = await csrPool(4);
    const { client, clock, metrics, options } = await setup({ makeCsr: pool.make }, 10 * HOUR_MS);
    const identity = await started(options);
    const first = identity.info()!;
    const firstContext = identity.secureContext();
    let changes = 0;
    identity.onChange(() => changes++);
    for (let i = 0; i < 6; i++) client.signFailures.push(httpError(503, 'agent away'));
    toNextSigning(clock, identity);
    await driveUntil(clock, 50, () => client.requests.length === 8, 'six failures and a retry');
    await until(() => client.signed.length === 2, 5_000, 'renewed', 2);
    // Each gap after the k-th failure is within [0.5, 1] x 1 s x 2^(k-1) (one 50 ms step of slack).
    const gaps = client.requestedAt.slice(2).map((t, k) => t - client.requestedAt[k + 1]!);
    gaps.forEach((gap, k) => {
      const ceiling = 1_000 * 2 ** k;
      assert.ok(
        gap >= ceiling / 2 - 1 && gap <= ceiling + 50,
        `gap ${k}: ${gap} (${gaps.join(',')})`,
      );
    });
    assert.equal(changes, 1);
    assert.notEqual(identity.info()!.serial, first.serial);
    assert.notEqual(identity.secureContext(), firstContext);
    assert.equal(
      await metric(metrics, /^meshwork_sidecar_cert_renewals_total\{result="error"\} (\S+)/m),
      6,
    );
    assert.equal(
      await metric(metrics, /^meshwork_sidecar_cert_renewals_total\{result="ok"\} (\S+)/m),
      1,
    );
    identity.close();
  });

  it('warns as expiry nears while renewal fails, and says so once expired; the leaf stays', async () => {
    const pool = await csrPool(2);
    const { client, clock, logger, options } = await setup({ makeCsr: pool.make }, HOUR_MS);
    const identity = await started(options);
    const serial = identity.info()!.serial;
    for (let i = 0; i < 10_000; i++) client.signFailures.push(httpError(503, 'agent away'));
    await driveUntil(
      clock,
      5_000,
      () => logger.lines.some((l) => l.level === 'error' && /expired/.test(l.msg)),
      'expired',
    );
    const failures = logger.lines.filter((l) => /renewal failed/.test(l.msg));
    const warned = failures.filter((l) => l.level === 'warn');
    assert.ok(warned.length > 0, 'no warning before expiry');
    // Quiet (info) while more than 10% of the lifetime is left.
    assert.ok(failures.some((l) => l.level === 'info'));
    assert.equal(identity.info()!.serial, serial);
    identity.close();
  });

  it('exposes seconds to expiry as a gauge', async () => {
    const { clock, metrics, options } = await setup({}, 24 * HOUR_MS);
    const identity = await started(options);
    const expiry = () => metric(metrics, /^meshwork_sidecar_cert_expiry_seconds (\S+)/m);
    assert.equal(await expiry(), 24 * 3600);
    clock.advance(HOUR_MS);
    assert.equal(await expiry(), 23 * 3600);
    identity.close();
  });

  it("names its metrics and log lines after its component (the gateway's: meshwork_gateway_cert_*)", async () => {
    const { metrics, logger, options } = await setup({ component: 'gateway' }, 24 * HOUR_MS);
    const identity = await started(options);
    const text = await metrics.metrics();
    assert.match(text, /^meshwork_gateway_cert_expiry_seconds 86400$/m);
    assert.match(text, /^meshwork_gateway_cert_renewals_total\{result="ok"\} 0$/m);
    assert.doesNotMatch(text, /meshwork_sidecar_/);
    assert.ok(logger.lines.some((l) => l.text.includes("component: 'gateway-identity'")));
    identity.close();
  });

  it('stops renewing once closed', async () => {
    const { client, clock, options } = await setup({}, HOUR_MS);
    const identity = await started(options);
    identity.close();
    clock.advance(2 * HOUR_MS);
    await new Promise((r) => setImmediate(r));
    assert.equal(client.requests.length, 1);
    assert.equal(clock.pendingTimers, 0);
  });
});

describe('MeshIdentity rotation', () => {
  it('serves a new bundle at once, and gets a leaf from a new active root soon', async () => {
    const { client, clock, options } = await setup();
    const identity = await started(options);
    const root1 = client.active;
    const root2 = await createTestRoot();
    let changes = 0;
    identity.onChange(() => changes++);

    // 1. the new root is added to the bundle (not active yet): a new context, no new leaf.
    client.roots = [root1, root2];
    const before = identity.secureContext();
    identity.applyTrust(client.trust());
    assert.equal(changes, 1);
    assert.equal(identity.bundlePem(), root1.certPem + root2.certPem);
    assert.notEqual(identity.secureContext(), before);
    clock.advance(10_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(client.requests.length, 1);

    // 2. the new root becomes active: a leaf from it within the jitter (5 s).
    client.active = root2;
    client.roots = [root2, root1];
    const t = clock.now();
    identity.applyTrust(client.trust());
    await driveUntil(clock, 100, () => client.signed.length === 2, 'leaf from the new root');
    assert.ok(client.requestedAt[1]! - t <= 5_000, `${client.requestedAt[1]! - t} ms`);
    await until(() => identity.info()!.rootId === root2.id, 5_000, 'new leaf in force', 2);
    assert.equal(identity.info()!.activeRootId, root2.id);
    assert.equal(changes, 3);

    // 3. the old root leaves the bundle: a new context, no new leaf.
    client.roots = [root2];
    identity.applyTrust({
      trustDomain: 'cluster.local',
      bundlePem: root2.certPem,
      activeRootId: root2.id,
    });
    assert.equal(changes, 4);
    assert.equal(identity.bundlePem(), root2.certPem);
    clock.advance(60_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(client.requests.length, 2);
    // and the next renewal is planned in the 60-90% window again
    const next =
      Date.parse(identity.info()!.nextSigningAt!) - Date.parse(identity.info()!.notBefore);
    assert.ok(next >= 0.6 * 24 * HOUR_MS - 1_000 && next <= 0.9 * 24 * HOUR_MS, `${next}`);
    identity.close();
  });

  it('fetches the bundle when a renewed leaf comes from a root it was not pushed yet', async () => {
    const { client, clock, options } = await setup({}, HOUR_MS);
    const identity = await started(options);
    const root2 = await createTestRoot();
    client.roots = [root2, client.active];
    client.active = root2;
    const rootsCalls = client.rootsCalls;
    await driveUntil(clock, 60_000, () => client.signed.length === 2, 'renewed');
    await until(() => identity.info()!.rootId === root2.id, 5_000, 'leaf from root2 in force', 2);
    assert.equal(client.rootsCalls, rootsCalls + 1);
    assert.equal(identity.bundlePem(), client.bundlePem);
    identity.close();
  });

  it('ignores a snapshot without ca, and keeps its trust domain when another is pushed', async () => {
    const { client, logger, options } = await setup();
    const identity = await started(options);
    identity.applyTrust(undefined);
    identity.applyTrust({ trustDomain: 'other.example', bundlePem: 'x', activeRootId: 'y' });
    assert.equal(identity.bundlePem(), client.bundlePem);
    assert.ok(logger.lines.some((l) => l.level === 'warn' && /another trust domain/.test(l.msg)));
    identity.close();
  });
});

describe('MeshIdentity TLS context', () => {
  it('serves and originates TLS 1.3 with its leaf, verifying the peer against the bundle', async () => {
    // Valid now: TLS checks validity against the real time.
    const a = await setup({}, HOUR_MS, Date.now() - 60_000);
    const orders = await started(a.options);
    const payments = await started({ ...a.options, service: 'payments', metrics: undefined });
    const r = await mtlsHandshake(orders.secureContext(), payments.secureContext());
    assert.deepEqual(r, {
      authorized: true,
      protocol: 'TLSv1.3',
      clientSaw: `URI:${ORDERS}`,
      serverSaw: 'URI:spiffe://cluster.local/ns/default/sa/payments',
    });
    orders.close();
    payments.close();
  });

  it('refuses a peer whose leaf is from another CA, or expired', async () => {
    const a = await setup({}, HOUR_MS, Date.now() - 60_000);
    const orders = await started(a.options);
    const peer = async (root: TestRoot, validity: LeafValidity = {}) => {
      const leaf = await createTestLeaf(
        root,
        'spiffe://cluster.local/ns/default/sa/payments',
        validity,
      );
      return createSecureContext({ key: leaf.keyPem, cert: leaf.certPem, ca: orders.bundlePem() });
    };
    const hourAgo = new Date(Date.now() - HOUR_MS);
    for (const [what, ctx] of [
      ['another CA', await peer(await createTestRoot())],
      [
        'expired',
        await peer(a.client.active, {
          notBefore: new Date(Date.now() - 2 * HOUR_MS),
          notAfter: hourAgo,
        }),
      ],
    ] as const)
      await assert.rejects(
        mtlsHandshake(orders.secureContext(), ctx),
        /refused the client: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|CERT_HAS_EXPIRED)/,
        what,
      );
    orders.close();
  });

  it('checkLeaf: any text or any corruption of a leaf is refused with SIDECAR_IDENTITY, never accepted as another', async () => {
    const root = await createTestRoot();
    const { keyPem, csrPem } = await createKeyAndCsr(ORDERS, 'orders', encodeInProcess);
    const leaf = await signTestCsr(root, csrPem, ORDERS);
    const res = {
      certPem: leaf.certPem,
      rootId: root.id,
      spiffeId: ORDERS,
      serial: leaf.serial,
      notBefore: '',
      notAfter: '',
    };
    assert.equal(checkLeaf(res, keyPem, ORDERS, root.certPem).serial, leaf.serial);
    const der = Buffer.from(leaf.certPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const outcome = (certPem: string, bundlePem = root.certPem): string => {
      try {
        const ok = checkLeaf({ ...res, certPem }, keyPem, ORDERS, bundlePem);
        // Accepted only as the very leaf the CA signed (a flip in a byte nobody reads).
        assert.equal(ok.serial, leaf.serial);
        assert.equal(ok.spiffeId, ORDERS);
        return 'accepted';
      } catch (err) {
        assert.ok(isMeshError(err, 'MESHWORK_ERR_SIDECAR_IDENTITY'), String(err));
        assert.equal(err.retryable, false);
        return 'refused';
      }
    };
    fc.assert(
      fc.property(fc.string(), fc.string(), (text, bundle) => {
        assert.equal(outcome(text, bundle), 'refused');
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.nat({ max: der.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, flip) => {
        const bad = Buffer.from(der);
        bad[at] = bad[at]! ^ flip;
        outcome(
          derToPem('CERTIFICATE', bad.buffer.slice(bad.byteOffset, bad.byteOffset + bad.length)),
        );
      }),
      { numRuns: 300 },
    );
    // and a leaf checked against a bundle of garbage or another root is refused
    assert.equal(outcome(leaf.certPem, 'garbage'), 'refused');
    assert.equal(outcome(leaf.certPem, (await createTestRoot()).certPem), 'refused');
  });

  it('checkLeaf: a leaf whose validity cannot be read or is empty is refused', async () => {
    const root = await createTestRoot();
    const { keyPem, csrPem } = await createKeyAndCsr(ORDERS, 'orders', encodeInProcess);
    const at = new Date(Date.UTC(2026, 0, 1));
    const leaf = await signTestCsr(root, csrPem, ORDERS, { notBefore: at, notAfter: at });
    const res = {
      certPem: leaf.certPem,
      rootId: root.id,
      spiffeId: ORDERS,
      serial: leaf.serial,
      notBefore: '',
      notAfter: '',
    };
    assert.throws(
      () => checkLeaf(res, keyPem, ORDERS, root.certPem),
      /validity .* unreadable or empty/,
    );
  });
});

describe('MeshIdentity: the private key stays private', () => {
  it('is in no log line, dump, metric or inspected object, through start, renewals, failures and rotation', async () => {
    const keys: string[] = [];
    const makeCsr: MeshIdentityOptions['makeCsr'] = async (id, service) => {
      const made = await createKeyAndCsr(id, service, encodeInProcess);
      keys.push(made.keyPem);
      return made;
    };
    const { client, clock, logger, metrics, options } = await setup({ makeCsr }, HOUR_MS);
    const identity = await started(options);
    client.signFailures.push(httpError(503, 'agent away'), httpError(403, 'denied'));
    await driveUntil(clock, 10_000, () => client.signed.length === 2, 'renewed after failures');
    const root2 = await createTestRoot();
    client.roots = [root2, client.active];
    client.active = root2;
    identity.applyTrust(client.trust());
    await driveUntil(clock, 1_000, () => client.signed.length === 3, 'rotated');
    await until(() => identity.info()!.rootId === root2.id, 5_000, 'rotated leaf in force', 2);
    assert.ok(keys.length >= 5);

    const seen = [
      ...logger.lines.map((l) => l.text),
      JSON.stringify(identity.info()),
      JSON.stringify(identity),
      inspect(identity, { depth: 20, showHidden: true }),
      await metrics.metrics(),
      ...client.requests.map((r) => JSON.stringify(r)),
    ].join('\n');
    assert.doesNotMatch(seen, /PRIVATE KEY/);
    for (const key of keys) {
      const body = key.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));
      for (const line of body) assert.ok(!seen.includes(line), 'a line of the key was found');
      const der = Buffer.from(body.join(''), 'base64');
      assert.ok(!seen.includes(der.toString('hex')), 'the key was found in hex');
    }
    identity.close();
  });
});
