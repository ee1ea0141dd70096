/**
 * @module createMeshCa: the mesh's certificate authority in the agent. It keeps its roots in the
 * store (a reserved key: see ca-state.ts), so a restart keeps them and every agent of a cluster
 * signs with the same root; it signs leaves from CSRs, rotates roots with an overlap, and
 * retires the old root when the overlap ends (once, whichever agent gets there first).
 */
import { systemClock, type Clock, type TimerHandle } from '../../core/clock.js';
import { errors } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import {
  DEFAULT_TRUST_DOMAIN,
  spiffeId,
  type CaRoot,
  type CaRootsResponse,
  type LeafSignResponse,
} from '../../protocol/mesh/ca.js';
import type { SnapshotTrust } from '../../protocol/mesh/snapshot.js';
import type { ReservedKv } from '../reserved-kv.js';
import { createRoot, rootSigner, signLeaf, verifyCsr, type RootSigner } from './ca-certificates.js';
import { CA_STATE_KEY, decodeCaState, encodeCaState, type CaState } from './ca-state.js';

/** A leaf's lifetime when none is configured (agent option `caLeafTtlMs`). */
export const DEFAULT_LEAF_TTL_MS = 24 * 3_600_000;
/** A root's lifetime: 10 years (roots rotate by `meshwork ca rotate`, not by expiry). */
export const ROOT_LIFETIME_MS = 3650 * 86_400_000;
/** How long a start or a rotation that lost a compare-and-set waits for the winner's write. */
const WAIT_FOR_WINNER_MS = 10_000;
/** Compare-and-set attempts of one rotation or retirement before it gives up. */
const MAX_CAS_ATTEMPTS = 5;
/** Timers are armed for at most this long, then re-armed (node's setTimeout caps at 2^31 ms). */
const MAX_TIMER_MS = 86_400_000;

export interface MeshCaOptions {
  /** Where the state lives: the registry's reserved keys. */
  readonly store: ReservedKv;
  /** SPIFFE trust domain of the leaves (default `cluster.local`). */
  readonly trustDomain?: string;
  /** Lifetime of a leaf (default 24 h). */
  readonly leafTtlMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** One leaf to sign. `service` and `namespace` are validated by the caller. */
export interface LeafSigning {
  readonly csr: string;
  readonly service: string;
  readonly namespace: string;
}

/**
 * The CA. `start()` MUST resolve before anything else is called. Reads are synchronous, from
 * the state this agent last saw; `onChange` listeners hear every change of roots (a rotation
 * here or on another agent, a retirement) and MUST NOT throw.
 */
export interface MeshCa {
  readonly trustDomain: string;
  readonly leafTtlMs: number;
  start(): Promise<void>;
  roots(): CaRootsResponse;
  /** What a proxy snapshot carries. */
  trust(): SnapshotTrust;
  /**
   * Signs a leaf for the CSR's key with the active root. Throws VALIDATION on field `csr` when
   * the CSR is not a valid request. Synchronous work: about a millisecond of CPU.
   */
  signLeaf(request: LeafSigning): LeafSignResponse;
  /**
   * Makes a new root and makes it active; the old active root stays in the bundle for
   * `overlapMs`, then is removed. Resolves with the bundle after the rotation.
   */
  rotate(overlapMs: number): Promise<CaRootsResponse>;
  onChange(listener: () => void): () => void;
  /** Stops following the store and the retirement timer. */
  close(): void;
}

interface Current {
  readonly state: CaState;
  readonly modifyIndex: number;
  readonly active: RootSigner;
  readonly roots: CaRootsResponse;
  readonly trust: SnapshotTrust;
}

class StoreMeshCa implements MeshCa {
  readonly trustDomain: string;
  readonly leafTtlMs: number;
  readonly #store: ReservedKv;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #listeners = new Set<() => void>();
  /** Signers by root id (a root's key is parsed once). */
  readonly #signers = new Map<string, RootSigner>();
  readonly #waiters = new Set<() => void>();
  #current: Current | undefined;
  #unsubscribe: (() => void) | undefined;
  #retireTimer: TimerHandle | undefined;
  #closed = false;

  constructor(options: MeshCaOptions) {
    this.#store = options.store;
    this.trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    this.leafTtlMs = options.leafTtlMs ?? DEFAULT_LEAF_TTL_MS;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? silentLogger).child({ component: 'mesh-ca' });
  }

  async start(): Promise<void> {
    this.#unsubscribe = this.#store.subscribe(CA_STATE_KEY, () => this.#onStored());
    if (this.#store.get(CA_STATE_KEY) === undefined) {
      const now = this.#clock.now();
      const root = await createRoot({
        trustDomain: this.trustDomain,
        nowMs: now,
        lifetimeMs: ROOT_LIFETIME_MS,
      });
      const state: CaState = {
        trustDomain: this.trustDomain,
        activeRootId: root.id,
        roots: [root],
      };
      const r = await this.#store.put(CA_STATE_KEY, encodeCaState(state), 0);
      if (r.ok)
        this.#log.info({ rootId: root.id, trustDomain: this.trustDomain }, 'CA root created');
      // Another agent made the first root meanwhile: its root is everybody's.
      else await this.#waitForState(0);
    }
    this.#onStored();
    const current = this.#current;
    if (current === undefined) throw errors.storeCorrupt('the mesh CA state did not load');
    if (current.state.trustDomain !== this.trustDomain) {
      this.#log.warn(
        { configured: this.trustDomain, stored: current.state.trustDomain },
        'trust domain differs from the one the CA root was made for; leaves use the configured one',
      );
    }
    this.#log.info({ activeRootId: current.state.activeRootId }, 'CA loaded');
  }

  roots(): CaRootsResponse {
    return this.#loaded().roots;
  }

  trust(): SnapshotTrust {
    return this.#loaded().trust;
  }

  signLeaf(request: LeafSigning): LeafSignResponse {
    const csr = verifyCsr(request.csr);
    const current = this.#loaded();
    const id = spiffeId(this.trustDomain, request.namespace, request.service);
    const leaf = signLeaf({
      signer: current.active,
      csr,
      spiffeId: id,
      commonName: request.service,
      nowMs: this.#clock.now(),
      ttlMs: this.leafTtlMs,
    });
    return {
      certPem: leaf.certPem,
      rootId: current.active.root.id,
      spiffeId: id,
      serial: leaf.serial,
      notBefore: new Date(leaf.notBeforeMs).toISOString(),
      notAfter: new Date(leaf.notAfterMs).toISOString(),
    };
  }

  async rotate(overlapMs: number): Promise<CaRootsResponse> {
    const root = await createRoot({
      trustDomain: this.trustDomain,
      nowMs: this.#clock.now(),
      lifetimeMs: ROOT_LIFETIME_MS,
    });
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const { state, modifyIndex } = this.#loaded();
      const retiresAtMs = this.#clock.now() + overlapMs;
      const next: CaState = {
        trustDomain: state.trustDomain,
        activeRootId: root.id,
        roots: [
          root,
          ...state.roots.map((r) => (r.id === state.activeRootId ? { ...r, retiresAtMs } : r)),
        ],
      };
      const r = await this.#store.put(CA_STATE_KEY, encodeCaState(next), modifyIndex);
      if (r.ok) {
        this.#onStored();
        this.#log.info(
          { rootId: root.id, retiring: state.activeRootId, retiresAt: new Date(retiresAtMs) },
          'CA root rotated',
        );
        return this.roots();
      }
      await this.#waitForState(modifyIndex);
    }
    throw errors.storeUnavailable('the CA state kept changing during the rotation; try again');
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribe?.();
    if (this.#retireTimer !== undefined) this.#clock.clearTimeout(this.#retireTimer);
    this.#retireTimer = undefined;
    for (const wake of this.#waiters) wake();
  }

  #loaded(): Current {
    const current = this.#current;
    if (current === undefined) throw new Error('the mesh CA is not started');
    return current;
  }

  /** Takes the stored state when it changed (called after every store event on the key). */
  #onStored(): void {
    for (const wake of [...this.#waiters]) wake();
    const entry = this.#store.get(CA_STATE_KEY);
    if (entry === undefined || entry.modifyIndex === this.#current?.modifyIndex) return;
    const decoded = decodeCaState(entry.value);
    if ('problem' in decoded) {
      // Keep signing with what was loaded: the agents that wrote it are newer or broken.
      this.#log.error({ problem: decoded.problem }, 'stored CA state is invalid; keeping the last');
      return;
    }
    let active: RootSigner;
    try {
      active = this.#signer(decoded);
    } catch (err) {
      this.#log.error({ err }, 'stored CA root cannot sign; keeping the last');
      return;
    }
    const first = this.#current === undefined;
    this.#current = {
      state: decoded,
      modifyIndex: entry.modifyIndex,
      active,
      roots: rootsResponse(this.trustDomain, decoded),
      trust: {
        trustDomain: this.trustDomain,
        bundlePem: bundleOf(decoded),
        activeRootId: decoded.activeRootId,
      },
    };
    for (const id of this.#signers.keys())
      if (!decoded.roots.some((r) => r.id === id)) this.#signers.delete(id);
    this.#armRetirement();
    if (first) return;
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch (err) {
        this.#log.error({ err }, 'CA change listener threw');
      }
    }
  }

  #signer(state: CaState): RootSigner {
    const root = state.roots[0];
    if (root === undefined) throw new Error('no root');
    let signer = this.#signers.get(root.id);
    if (signer === undefined) {
      signer = rootSigner(root);
      this.#signers.set(root.id, signer);
    }
    return signer;
  }

  /** A timer for the next root to retire, if any. */
  #armRetirement(): void {
    if (this.#retireTimer !== undefined) this.#clock.clearTimeout(this.#retireTimer);
    this.#retireTimer = undefined;
    if (this.#closed) return;
    const due = this.#current?.state.roots.map((r) => r.retiresAtMs).filter((t) => t !== undefined);
    if (due === undefined || due.length === 0) return;
    const waitMs = Math.min(Math.max(0, Math.min(...due) - this.#clock.now()), MAX_TIMER_MS);
    this.#retireTimer = this.#clock.setTimeout(() => {
      this.#retireTimer = undefined;
      void this.#retire().catch((err: unknown) => {
        this.#log.warn({ err }, 'CA root retirement failed; retrying');
        this.#retireTimer ??= this.#clock.setTimeout(() => this.#armRetirement(), 1000);
      });
    }, waitMs);
    this.#retireTimer.unref?.();
  }

  /**
   * Removes the roots whose overlap ended. Every agent's timer fires; the compare-and-set lets
   * one write through, the others see that write and find nothing left to remove.
   */
  async #retire(): Promise<void> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS && !this.#closed; attempt++) {
      const { state, modifyIndex } = this.#loaded();
      const now = this.#clock.now();
      const kept = state.roots.filter((r) => r.retiresAtMs === undefined || r.retiresAtMs > now);
      if (kept.length === state.roots.length) {
        this.#armRetirement(); // not due yet (the timer was capped), or done by another agent
        return;
      }
      const next: CaState = { ...state, roots: kept };
      const r = await this.#store.put(CA_STATE_KEY, encodeCaState(next), modifyIndex);
      if (r.ok) {
        const removed = state.roots.filter((x) => !kept.includes(x)).map((x) => x.id);
        this.#log.info({ removed }, 'CA root retired');
        this.#onStored();
        return;
      }
      await this.#waitForState(modifyIndex);
    }
  }

  /** Resolves once the stored state's modifyIndex is past `seen` (bounded). */
  async #waitForState(seen: number): Promise<void> {
    const moved = () => (this.#store.get(CA_STATE_KEY)?.modifyIndex ?? 0) !== seen;
    if (moved() || this.#closed) return;
    await new Promise<void>((resolve) => {
      const timer = this.#clock.setTimeout(() => done(), WAIT_FOR_WINNER_MS);
      const check = () => {
        if (moved() || this.#closed) done();
      };
      const done = () => {
        this.#clock.clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
    });
    if (!moved())
      throw errors.storeUnavailable('the CA state written by another agent never arrived');
  }
}

function rootsResponse(trustDomain: string, state: CaState): CaRootsResponse {
  const roots: CaRoot[] = state.roots.map((r) => ({
    id: r.id,
    certPem: r.certPem,
    notBefore: new Date(r.notBeforeMs).toISOString(),
    notAfter: new Date(r.notAfterMs).toISOString(),
    active: r.id === state.activeRootId,
    ...(r.retiresAtMs === undefined ? {} : { retiresAt: new Date(r.retiresAtMs).toISOString() }),
  }));
  return { trustDomain, activeRootId: state.activeRootId, roots, bundlePem: bundleOf(state) };
}

/** Every root's PEM, active first, each ending in a newline. */
function bundleOf(state: CaState): string {
  return state.roots.map((r) => (r.certPem.endsWith('\n') ? r.certPem : `${r.certPem}\n`)).join('');
}

/**
 * The agent's CA over its store's reserved keys.
 * @example
 * const ca = createMeshCa({ store: registry.reservedKv, trustDomain: 'cluster.local' });
 * await ca.start();
 * const leaf = ca.signLeaf({ csr, service: 'orders', namespace: 'default' });
 */
export function createMeshCa(options: MeshCaOptions): MeshCa {
  return new StoreMeshCa(options);
}
