/**
 * @module A proxy's mesh identity manager (issue 20; docs/security.md "Sidecar identities" and
 * "The gateway's identity"), shared by the sidecar (the SPIFFE ID of its service) and the gateway
 * (of its service account): its own EC P-256 key and a CSR, a leaf from the agent's CA, and the
 * TLS context the data path serves and originates mTLS with (a MeshTlsIdentity). Renews at a
 * random point between 60% and 90% of the leaf's lifetime, keeps the old leaf while the agent is
 * away, and follows root rotations pushed in the snapshot's `ca`. The private key never leaves
 * the process: it is made here, kept in memory only, and never logged, dumped, sent or written.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { Counter, Gauge, type Registry } from 'prom-client';
import { systemClock, type Clock, type TimerHandle } from '../../core/clock.js';
import { errors, isMeshError, type MeshError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import {
  spiffeId as spiffeIdOf,
  type CaRootsResponse,
  type LeafSignRequest,
  type LeafSignResponse,
} from '../../protocol/mesh/ca.js';
import type { SnapshotTrust } from '../../protocol/mesh/snapshot.js';
import type { MeshTlsIdentity } from '../tls-identity.js';
import type { KeyAndCsr } from './csr.js';

/** What the identity manager asks of the agent (RegistryClient implements it). */
export interface CaClient {
  caRoots(): Promise<CaRootsResponse>;
  caSignLeaf(req: LeafSignRequest): Promise<LeafSignResponse>;
}

/** Makes a key and a CSR for a SPIFFE ID (default: ./csr.ts, loaded on first use). */
export type CsrMaker = (spiffeId: string, service: string) => Promise<KeyAndCsr>;

export interface MeshIdentityOptions {
  /**
   * Who holds the identity (`sidecar`, `gateway`): names its metrics
   * (`meshwork_<component>_cert_*`), its log component (`<component>-identity`) and messages.
   */
  readonly component: string;
  /** The SPIFFE ID's `sa` part: the sidecar's service, the gateway's service account. */
  readonly service: string;
  readonly namespace: string;
  readonly client: CaClient;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Uniform in [0, 1): where in 60-90% of the lifetime renewal lands, backoff and jitter. */
  readonly random?: () => number;
  /** Where the cert metrics are registered (meshwork_<component>_cert_*). */
  readonly metrics?: Registry;
  /** Retry after a failed signing: `baseMs` doubling up to `maxMs`, each times 0.5-1. */
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
  /** A new active root: the new leaf is asked for within this long (uniform), not at once. */
  readonly rotationJitterMs?: number;
  /** Tests: a key and CSR maker of their own (to know the key they look for in logs). */
  readonly makeCsr?: CsrMaker;
}

export const DEFAULT_MESH_IDENTITY_OPTIONS = Object.freeze({
  backoff: Object.freeze({ baseMs: 1_000, maxMs: 60_000 }),
  rotationJitterMs: 5_000,
});

/** The leaf in force, as `/config_dump` shows it (never the key). */
export interface LeafInfo {
  readonly spiffeId: string;
  /** Hex, lower case. */
  readonly serial: string;
  /** RFC 3339. */
  readonly notBefore: string;
  readonly notAfter: string;
  /** The root that signed it. */
  readonly rootId: string;
  /** The root the CA signs with now (differs from rootId during a rotation). */
  readonly activeRootId: string;
  readonly trustDomain: string;
  /** RFC 3339: when the next signing is planned (renewal, rotation or retry). */
  readonly nextSigningAt: string | null;
}

/**
 * The renewal delay of a leaf valid from `notBeforeMs` to `notAfterMs` seen at `nowMs`: a point
 * uniformly between 60% and 90% of its lifetime (`random` in [0, 1)), so sidecars started
 * together do not renew together; 0 when that point is past.
 */
export function renewalDelayMs(
  notBeforeMs: number,
  notAfterMs: number,
  nowMs: number,
  random: number,
): number {
  const lifetime = Math.max(0, notAfterMs - notBeforeMs);
  const share = 0.6 + 0.3 * Math.min(Math.max(random, 0), 1);
  // The offset from now first: epoch milliseconds leave a double few fractional bits.
  return Math.max(0, Math.floor(notBeforeMs - nowMs + lifetime * share));
}

/** The leaf and its key: private to this module, never handed out whole. */
interface Leaf {
  readonly certPem: string;
  readonly keyPem: string;
  readonly spiffeId: string;
  readonly serial: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly rootId: string;
}

const statusOf = (err: unknown): number | undefined => {
  const s = isMeshError(err) ? (err.details?.status as number | undefined) : undefined;
  return typeof s === 'number' ? s : undefined;
};

/** A refusal (4xx but 408/429) or a wrong leaf: asking again the same way will not help. */
const isPermanent = (err: unknown): boolean => {
  if (isMeshError(err, 'MESHWORK_ERR_SIDECAR_IDENTITY')) return !(err as MeshError).retryable;
  const s = statusOf(err);
  return s !== undefined && s >= 400 && s < 500 && s !== 408 && s !== 429;
};

const iso = (ms: number): string => new Date(ms).toISOString();

/** The roots of a PEM bundle, parsed (a bad block is skipped: the CA vouches for its bundle). */
function parseBundle(bundlePem: string): X509Certificate[] {
  const blocks = bundlePem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  const out: X509Certificate[] = [];
  for (const b of blocks ?? []) {
    try {
      out.push(new X509Certificate(b));
    } catch {
      // not a certificate node can read: it cannot verify a leaf either
    }
  }
  return out;
}

/**
 * Checks a signed leaf is this proxy's (its key, its SPIFFE ID as the only URI SAN, issued by
 * a root of the bundle) and reads its validity. Throws SIDECAR_IDENTITY (not retryable) if not;
 * `holder` names the proxy in the message (`sidecar`, `gateway`).
 */
export function checkLeaf(
  res: LeafSignResponse,
  keyPem: string,
  expectedSpiffeId: string,
  bundlePem: string,
  holder = 'proxy',
): Omit<Leaf, 'keyPem'> {
  const bad = (why: string): MeshError =>
    errors.sidecarIdentity(`the CA answered a leaf that is not this ${holder}'s: ${why}`, false);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(res.certPem);
  } catch (err) {
    throw bad(`certPem is not a certificate (${(err as Error).message})`);
  }
  if (!cert.checkPrivateKey(createPrivateKey(keyPem))) throw bad('it is for another key');
  const uris = (cert.subjectAltName ?? '')
    .split(', ')
    .filter((n) => n.startsWith('URI:'))
    .map((n) => n.slice(4));
  if (uris.length !== 1 || uris[0] !== expectedSpiffeId)
    throw bad(`its URI SAN is ${uris.join(', ') || 'missing'}, not ${expectedSpiffeId}`);
  const issuer = parseBundle(bundlePem).find(
    (root) => cert.checkIssued(root) && cert.verify(root.publicKey),
  );
  if (issuer === undefined) throw bad('no root of the trust bundle signed it');
  const notBeforeMs = Date.parse(cert.validFrom);
  const notAfterMs = Date.parse(cert.validTo);
  if (!Number.isFinite(notBeforeMs) || !Number.isFinite(notAfterMs) || notAfterMs <= notBeforeMs)
    throw bad(`its validity (${cert.validFrom} to ${cert.validTo}) is unreadable or empty`);
  return {
    certPem: res.certPem,
    spiffeId: expectedSpiffeId,
    serial: cert.serialNumber.toLowerCase(),
    notBeforeMs,
    notAfterMs,
    rootId: res.rootId,
  };
}

let defaultCsrMaker: Promise<CsrMaker> | undefined;
/**
 * ./csr.ts on first use, by a proxy whose agent has a CA: its key made here, its CSR encoded in
 * a child process (createKeyAndCsr's default: the ASN.1 packages never load in the proxy).
 */
const loadCsrMaker = (): Promise<CsrMaker> =>
  (defaultCsrMaker ??= import('./csr.js').then((m) => m.createKeyAndCsr));

/**
 * A proxy's mesh identity. Make it with {@link startMeshIdentity}, which gets the first
 * leaf; then it renews and rotates on its own until `close()`.
 */
export class MeshIdentity implements MeshTlsIdentity {
  readonly trustDomain: string;
  readonly spiffeId: string;
  readonly #o: MeshIdentityOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #backoff: { readonly baseMs: number; readonly maxMs: number };
  readonly #rotationJitterMs: number;
  readonly #listeners = new Set<() => void>();
  readonly #renewals: Counter<'result'> | undefined;
  #bundlePem: string;
  #activeRootId: string;
  #leaf: Leaf | undefined;
  #context: SecureContext | undefined;
  #contextOptions: SecureContextOptions | undefined;
  #timer: TimerHandle | undefined;
  #nextSigningAtMs: number | undefined;
  #signing: Promise<void> | undefined;
  #failures = 0;
  #closed = false;

  /** Use {@link startMeshIdentity}. */
  constructor(options: MeshIdentityOptions, roots: CaRootsResponse) {
    this.#o = options;
    this.#log = options.logger.child({ component: `${options.component}-identity` });
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#backoff = options.backoff ?? DEFAULT_MESH_IDENTITY_OPTIONS.backoff;
    this.#rotationJitterMs =
      options.rotationJitterMs ?? DEFAULT_MESH_IDENTITY_OPTIONS.rotationJitterMs;
    this.trustDomain = roots.trustDomain;
    this.spiffeId = spiffeIdOf(roots.trustDomain, options.namespace, options.service);
    this.#bundlePem = roots.bundlePem;
    this.#activeRootId = roots.activeRootId;
    if (options.metrics !== undefined) {
      const secondsLeft = (): number | undefined =>
        this.#leaf === undefined ? undefined : (this.#leaf.notAfterMs - this.#clock.now()) / 1000;
      new Gauge({
        name: `meshwork_${options.component}_cert_expiry_seconds`,
        help: `Seconds until the ${options.component}'s leaf certificate expires (its notAfter); negative once expired`,
        registers: [options.metrics],
        collect() {
          const left = secondsLeft();
          if (left === undefined) this.reset();
          else this.set(left);
        },
      });
      this.#renewals = new Counter({
        name: `meshwork_${options.component}_cert_renewals_total`,
        help: `Signings of the ${options.component}'s leaf after the first (renewals, rotations), by result (ok, error)`,
        labelNames: ['result'],
        registers: [options.metrics],
      });
      this.#renewals.inc({ result: 'ok' }, 0);
      this.#renewals.inc({ result: 'error' }, 0);
    }
  }

  secureContext(): SecureContext {
    if (this.#context === undefined) throw new Error('MeshIdentity: no leaf yet');
    return this.#context;
  }
  secureContextOptions(): SecureContextOptions {
    if (this.#contextOptions === undefined) throw new Error('no leaf in force');
    return this.#contextOptions;
  }

  bundlePem(): string {
    return this.#bundlePem;
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The leaf in force (never the key); undefined before the first. */
  info(): LeafInfo | undefined {
    const leaf = this.#leaf;
    if (leaf === undefined) return undefined;
    return {
      spiffeId: leaf.spiffeId,
      serial: leaf.serial,
      notBefore: iso(leaf.notBeforeMs),
      notAfter: iso(leaf.notAfterMs),
      rootId: leaf.rootId,
      activeRootId: this.#activeRootId,
      trustDomain: this.trustDomain,
      nextSigningAt: this.#nextSigningAtMs === undefined ? null : iso(this.#nextSigningAtMs),
    };
  }

  /**
   * The CA's trust from a snapshot in force: a new bundle is served at once (the context is
   * rebuilt with it); a new active root gets a new leaf soon (within rotationJitterMs).
   * MUST NOT throw.
   */
  applyTrust(trust: SnapshotTrust | undefined): void {
    if (trust === undefined || this.#closed) return;
    if (trust.trustDomain !== this.trustDomain) {
      this.#log.warn(
        { trustDomain: trust.trustDomain, ours: this.trustDomain },
        `the snapshot names another trust domain; this ${this.#o.component} keeps its own until restarted`,
      );
      return;
    }
    if (trust.bundlePem !== this.#bundlePem) {
      this.#bundlePem = trust.bundlePem;
      this.#log.info({ activeRootId: trust.activeRootId }, 'trust bundle changed');
      this.#rebuild();
    }
    if (trust.activeRootId !== this.#activeRootId) {
      this.#activeRootId = trust.activeRootId;
      if (this.#leaf !== undefined && this.#leaf.rootId !== trust.activeRootId) {
        const delayMs = Math.floor(this.#random() * this.#rotationJitterMs);
        this.#log.info(
          { activeRootId: trust.activeRootId, leafRootId: this.#leaf.rootId, delayMs },
          'the CA has a new active root: getting a leaf from it',
        );
        this.#schedule(delayMs);
      }
    }
  }

  /** Stops renewing. The context in force stays readable. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#nextSigningAtMs = undefined;
  }

  /** Gets a leaf now (first leaf: called by startMeshIdentity). Rejects on failure. */
  async signNow(): Promise<void> {
    if (this.#signing !== undefined) return this.#signing;
    this.#signing = this.#sign().finally(() => (this.#signing = undefined));
    return this.#signing;
  }

  async #sign(): Promise<void> {
    const makeCsr = this.#o.makeCsr ?? (await loadCsrMaker());
    const { keyPem, csrPem } = await makeCsr(this.spiffeId, this.#o.service);
    let res: LeafSignResponse;
    try {
      res = await this.#o.client.caSignLeaf({
        csr: csrPem,
        service: this.#o.service,
        namespace: this.#o.namespace,
      });
    } catch (err) {
      throw errors.sidecarIdentity(
        `the agent's CA did not sign a leaf for ${this.spiffeId}: ${(err as Error).message}`,
        !isPermanent(err),
        err,
      );
    }
    if (res.spiffeId !== this.spiffeId)
      throw errors.sidecarIdentity(
        `the CA answered a leaf that is not this ${this.#o.component}'s: for ${res.spiffeId}, not ${this.spiffeId}`,
        false,
      );
    let leaf: Omit<Leaf, 'keyPem'>;
    try {
      leaf = checkLeaf(res, keyPem, this.spiffeId, this.#bundlePem, this.#o.component);
    } catch (err) {
      // Signed by a root this proxy does not know yet (a rotation it has not been pushed):
      // fetch the bundle once and check again.
      const roots = await this.#o.client.caRoots().catch(() => undefined);
      if (roots === undefined || roots.bundlePem === this.#bundlePem) throw err;
      leaf = checkLeaf(res, keyPem, this.spiffeId, roots.bundlePem, this.#o.component);
      this.#bundlePem = roots.bundlePem;
      this.#activeRootId = roots.activeRootId;
    }
    this.#leaf = { ...leaf, keyPem };
    this.#rebuild();
    this.#log.info(
      {
        spiffeId: leaf.spiffeId,
        serial: leaf.serial,
        notAfter: iso(leaf.notAfterMs),
        rootId: leaf.rootId,
      },
      'leaf certificate in force',
    );
  }

  /** Rebuilds the context from the leaf and bundle in force and tells the listeners. */
  #rebuild(): void {
    const leaf = this.#leaf;
    if (leaf === undefined) return;
    this.#contextOptions = {
      key: leaf.keyPem,
      cert: leaf.certPem,
      ca: this.#bundlePem,
      minVersion: 'TLSv1.3',
    };
    this.#context = createSecureContext(this.#contextOptions);
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch (err) {
        this.#log.error({ err }, 'a TLS context listener threw');
      }
    }
  }

  /** After a leaf is in force: plans its renewal (or a move to the active root). */
  planRenewal(): void {
    const leaf = this.#leaf;
    if (leaf === undefined || this.#closed) return;
    this.#failures = 0;
    if (leaf.rootId !== this.#activeRootId) {
      // Signed by a root that is no longer active (agents of a cluster not yet agreed): again
      // soon, not at the next renewal.
      this.#schedule(Math.floor(this.#random() * this.#rotationJitterMs));
      return;
    }
    this.#schedule(
      renewalDelayMs(leaf.notBeforeMs, leaf.notAfterMs, this.#clock.now(), this.#random()),
    );
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#nextSigningAtMs = this.#clock.now() + delayMs;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#nextSigningAtMs = undefined;
      void this.#renew();
    }, delayMs);
    this.#timer.unref?.();
  }

  async #renew(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.signNow();
      this.#renewals?.inc({ result: 'ok' });
      this.planRenewal();
    } catch (err) {
      this.#renewals?.inc({ result: 'error' });
      this.#failures++;
      const delayMs = this.#backoffMs(this.#failures);
      const leaf = this.#leaf;
      const leftMs = leaf === undefined ? 0 : leaf.notAfterMs - this.#clock.now();
      const fields = {
        err,
        failures: this.#failures,
        retryInMs: delayMs,
        notAfter: leaf === undefined ? null : iso(leaf.notAfterMs),
      };
      if (leftMs <= 0)
        this.#log.error(fields, 'leaf certificate expired and renewal failed: peers refuse it');
      else if (leaf !== undefined && leftMs < 0.1 * (leaf.notAfterMs - leaf.notBeforeMs))
        this.#log.warn(fields, 'leaf certificate expires soon and renewal failed: retrying');
      else this.#log.info(fields, 'leaf renewal failed: keeping the leaf in force, retrying');
      this.#schedule(delayMs);
    }
  }

  /** Exponential backoff from baseMs, capped at maxMs, times a uniform 0.5-1. */
  #backoffMs(failures: number): number {
    const { baseMs, maxMs } = this.#backoff;
    const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(failures - 1, 30));
    return Math.floor(ceiling * (0.5 + 0.5 * this.#random()));
  }
}

/** How a proxy's identity came out at start. */
export type MeshIdentityStart =
  | { readonly state: 'on'; readonly identity: MeshIdentity }
  /** The agent answered 404 on the roots: it has no CA (an older agent). */
  | { readonly state: 'no-ca' }
  /** No agent answered within the wait: whether it has a CA is unknown. */
  | { readonly state: 'unreachable'; readonly error: string };

/**
 * Asks the agent for its roots and, if it has a CA, gets the first leaf, retrying with backoff
 * for at most `startTimeoutMs`. Resolves `no-ca` on a 404, `unreachable` when no agent answered
 * in time; rejects with SIDECAR_IDENTITY when the CA refused (a token that may not write the
 * service), answered a leaf not this proxy's, or did not sign within the wait.
 */
export async function startMeshIdentity(
  options: MeshIdentityOptions,
  startTimeoutMs: number,
): Promise<MeshIdentityStart> {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const backoff = options.backoff ?? DEFAULT_MESH_IDENTITY_OPTIONS.backoff;
  const deadline = clock.monotonicMs() + startTimeoutMs;
  const pause = (attempt: number): Promise<boolean> => {
    const left = deadline - clock.monotonicMs();
    if (left <= 0) return Promise.resolve(false);
    const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(attempt - 1, 30));
    const ms = Math.min(left, Math.floor(ceiling * (0.5 + 0.5 * random())));
    return new Promise((resolve) => clock.setTimeout(() => resolve(true), ms));
  };

  let roots: CaRootsResponse | undefined;
  for (let attempt = 1; roots === undefined; attempt++) {
    try {
      roots = await options.client.caRoots();
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) return { state: 'no-ca' };
      if (isPermanent(err))
        throw errors.sidecarIdentity(
          `the agent refused its CA roots: ${(err as Error).message}`,
          false,
          err,
        );
      if (!(await pause(attempt))) return { state: 'unreachable', error: (err as Error).message };
    }
  }

  const identity = new MeshIdentity(options, roots);
  for (let attempt = 1; ; attempt++) {
    try {
      await identity.signNow();
      identity.planRenewal();
      return { state: 'on', identity };
    } catch (err) {
      if (isPermanent(err)) throw err;
      if (!(await pause(attempt)))
        throw errors.sidecarIdentity(
          `the agent has a CA but signed no leaf for ${identity.spiffeId} within ${startTimeoutMs} ms: ${(err as Error).message}`,
          false,
          err,
        );
    }
  }
}

/** Mesh mTLS as a proxy's start left it: a certificate in force, or why not. */
export type MeshMtls =
  | { readonly state: 'on'; readonly identity: MeshIdentity }
  | { readonly state: 'off'; readonly reason: string };

/** A proxy's `mtls` and `mtlsStartTimeoutMs` options, and the agents it asks (for its logs). */
export interface MeshMtlsOptions {
  readonly mtls: 'auto' | 'off';
  readonly mtlsStartTimeoutMs: number;
  readonly registry: readonly string[];
}

/**
 * `--mtls auto`: the first leaf (startMeshIdentity) when the agent has a CA, else why not, logged
 * on `identity.logger` (no CA: an older agent, info; no agent within the wait: a warning).
 * `--mtls off`: never asks. Rejects when the CA refused the proxy or signed nothing within the
 * wait (SIDECAR_IDENTITY).
 */
export async function startMeshMtls(
  options: MeshMtlsOptions,
  identity: MeshIdentityOptions,
): Promise<MeshMtls> {
  const log = identity.logger;
  if (options.mtls === 'off') {
    log.info({ mtls: 'off' }, 'mTLS off (--mtls off): no mesh identity, plaintext only');
    return { state: 'off', reason: 'mtls: off' };
  }
  const started = await startMeshIdentity(identity, options.mtlsStartTimeoutMs);
  if (started.state === 'on') return started;
  if (started.state === 'no-ca') {
    log.info(
      { registry: options.registry },
      'the agent has no CA (404 on its roots): running without mTLS',
    );
    return { state: 'off', reason: 'the agent has no CA' };
  }
  log.warn(
    { registry: options.registry, waitedMs: options.mtlsStartTimeoutMs, error: started.error },
    'no agent answered for its CA: running without mTLS until restarted',
  );
  return {
    state: 'off',
    reason: `no agent answered within ${options.mtlsStartTimeoutMs} ms (${started.error})`,
  };
}
