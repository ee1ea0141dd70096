/**
 * @module RegistrySessions: Consul's lock sessions: create, renew, destroy, the invalidations
 * (TTL lapsed, a bound check critical or gone), and KV acquire / release with the lock delay.
 */
import { randomUUID } from 'node:crypto';
import type { Clock, TimerHandle } from '../core/clock.js';
import { errors } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Session, SessionInput } from '../core/types.js';
import { nodeChecksId, type CatalogView } from './catalog-view.js';
import { retryCommit } from './commit-retry.js';
import type { RegistryKv } from './registry-kv.js';
import type { CatalogStore, StoreEvent, StoredSession } from './store/catalog-store.js';

/**
 * Consul invalidates a TTL session up to twice its TTL after the last renew (its servers arm the
 * timer at TTL x 2, `structs.SessionTTLMultiplier`); so does Meshwork.
 */
export const SESSION_TTL_MULTIPLIER = 2;

/** Lock delays kept before the lapsed ones are swept. */
const MAX_LOCK_DELAYS_KEPT = 1024;

/** An acquire or release that loses its compare this many times answers false. */
const MAX_LOCK_ATTEMPTS = 5;

/** What {@link RegistrySessions} reads, writes through and times with. */
export interface RegistrySessionsOptions {
  readonly view: CatalogView;
  readonly store: CatalogStore;
  readonly kv: RegistryKv;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * The sessions of one registry. Its `beforeEvents` MUST see every store event batch before the
 * view applies it (it reads what the ending sessions held), and `afterEvents` after.
 *
 * TTLs: this agent's timers, armed at create, renew and start (a restart gives every stored
 * session a full 2 x TTL again, as a Consul leader change does). Lock delays: in memory, as
 * Consul's leader keeps them; each agent that sees a session end starts them.
 */
export class RegistrySessions {
  readonly #view: CatalogView;
  readonly #store: CatalogStore;
  readonly #kv: RegistryKv;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** TTL deadlines by session id. */
  readonly #ttlTimers = new Map<string, TimerHandle>();
  /** Key -> monotonic ms until which no session may acquire it. */
  readonly #lockDelays = new Map<string, number>();
  /** Sessions whose invalidation is being committed (so it is sent once). */
  readonly #ending = new Set<string>();
  #started = false;
  #unsubscribe: (() => void) | undefined;

  constructor(options: RegistrySessionsOptions) {
    this.#view = options.view;
    this.#store = options.store;
    this.#kv = options.kv;
    this.#clock = options.clock;
    this.#log = options.logger;
  }

  /**
   * Arms the TTL of every stored session (or, with store-kept TTLs, follows their lapses and
   * ends those that lapsed while no agent ran), then checks the bound checks once.
   */
  start(): void {
    this.#started = true;
    const leases = this.#store.sessionLeases;
    if (leases !== undefined) {
      this.#unsubscribe = leases.onExpired((id) => this.#invalidate(id, 'ttl lapsed'));
      for (const s of this.#view.sessions())
        if (s.session.ttlMs > 0 && !leases.alive(s.session.id))
          this.#invalidate(s.session.id, 'ttl lapsed');
    } else for (const s of this.#view.sessions()) this.#armTtl(s.session);
    this.#checkBindings();
  }

  stop(): void {
    this.#started = false;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    for (const t of this.#ttlTimers.values()) this.#clock.clearTimeout(t);
    this.#ttlTimers.clear();
  }

  get(id: string): StoredSession | undefined {
    return this.#view.session(id);
  }

  list(): StoredSession[] {
    return this.#view.sessions();
  }

  /** Creates a session; answers it as stored. Node checks get the node's reserved instance id. */
  async create(input: SessionInput): Promise<{ session: StoredSession; index: number }> {
    const checks = input.checks.map((c) =>
      c.kind === 'node' ? { ...c, instanceId: nodeChecksId(input.node) } : c,
    );
    const session: Session = { id: randomUUID(), ...input, checks };
    const r = await this.#store.commit([{ op: 'put-session', session }]);
    const stored = this.#view.session(session.id) ?? { session, createIndex: r.index };
    return { session: stored, index: r.index };
  }

  /**
   * Ends a session as Consul's destroy does: its keys released or deleted, their lock delay
   * started. Destroying an unknown session is not an error (Consul answers true).
   */
  async destroy(id: string): Promise<{ index: number }> {
    // A shared store fails the commit when the session took a lock, or a key it holds changed,
    // since this view heard (CatalogStore contract): look again.
    return retryCommit(async () => {
      const r = await this.#store.commit([{ op: 'delete-session', id }]);
      return r.ok ? { index: r.index } : undefined;
    });
  }

  /** Restarts a TTL session's deadline; throws SESSION_NOT_FOUND for an unknown session. */
  async renew(id: string): Promise<StoredSession> {
    const stored = this.#view.session(id);
    if (stored === undefined) throw errors.sessionNotFound(id);
    const leases = this.#store.sessionLeases;
    if (leases === undefined) this.#armTtl(stored.session);
    else if (stored.session.ttlMs > 0 && !(await leases.renew(id))) {
      // Lapsed in etcd; the watch's lapse ends it on every agent.
      throw errors.sessionNotFound(id);
    }
    return stored;
  }

  /**
   * Consul's `?acquire=`: takes the key's lock for `sessionId` when nobody holds it and no lock
   * delay is running (a new acquisition: lock index + 1), or updates the value when the session
   * already holds it. Answers ok false when another session holds it or a lock delay runs.
   * Throws SESSION_NOT_FOUND for a session that does not exist.
   */
  async acquire(
    key: string,
    value: Uint8Array,
    sessionId: string,
    flags = 0,
  ): Promise<{ ok: boolean; index: number }> {
    for (let attempt = 0; attempt < MAX_LOCK_ATTEMPTS; attempt++) {
      if (this.#view.session(sessionId) === undefined) throw errors.sessionNotFound(sessionId);
      const current = this.#view.kvGet(key);
      let lockIndex = current?.lockIndex ?? 0;
      if (current?.session !== sessionId) {
        if (current?.session !== undefined || this.#lockDelayed(key))
          return { ok: false, index: this.#view.kvIndex };
        lockIndex += 1;
      }
      const r = await this.#kv.kvPut(key, value, {
        flags,
        cas: current?.modifyIndex ?? 0,
        lock: { session: sessionId, lockIndex },
      });
      if (r.ok) return r;
      // Lost a compare: the key changed, or the session ended, meanwhile. The view has heard of
      // it now (CatalogStore contract): decide again.
    }
    return { ok: false, index: this.#view.kvIndex };
  }

  /**
   * Consul's `?release=`: releases the key's lock, putting `value`, when `sessionId` holds it;
   * answers ok false otherwise. The session need not exist any more.
   */
  async release(
    key: string,
    value: Uint8Array,
    sessionId: string,
    flags = 0,
  ): Promise<{ ok: boolean; index: number }> {
    for (let attempt = 0; attempt < MAX_LOCK_ATTEMPTS; attempt++) {
      const current = this.#view.kvGet(key);
      if (current === undefined || current.session !== sessionId)
        return { ok: false, index: this.#view.kvIndex };
      const r = await this.#kv.kvPut(key, value, {
        flags,
        cas: current.modifyIndex,
        lock: { session: undefined, lockIndex: current.lockIndex ?? 0 },
      });
      if (r.ok) return r;
    }
    return { ok: false, index: this.#view.kvIndex };
  }

  /** Before the view applies `events`: starts the lock delay of the keys ending sessions hold. */
  beforeEvents(events: readonly StoreEvent[]): void {
    for (const e of events) {
      if (e.type !== 'session-delete') continue;
      const ending = this.#view.session(e.id)?.session;
      if (ending === undefined || ending.lockDelayMs <= 0) continue;
      const now = this.#clock.monotonicMs();
      // Lapsed delays are dropped when their key is asked about; a key nobody asks about again
      // would stay, so past a bound the lapsed ones are swept.
      if (this.#lockDelays.size > MAX_LOCK_DELAYS_KEPT)
        for (const [key, until] of this.#lockDelays) if (until <= now) this.#lockDelays.delete(key);
      for (const held of this.#view.heldBy(e.id))
        this.#lockDelays.set(held.key, now + ending.lockDelayMs);
    }
  }

  /** After the view applied `events`: TTL timers follow the sessions; bound checks are judged. */
  afterEvents(events: readonly StoreEvent[]): void {
    let checksMoved = false;
    for (const e of events) {
      switch (e.type) {
        case 'session-put':
          this.#armTtl(e.session);
          break;
        case 'session-delete': {
          const timer = this.#ttlTimers.get(e.id);
          if (timer !== undefined) this.#clock.clearTimeout(timer);
          this.#ttlTimers.delete(e.id);
          this.#ending.delete(e.id);
          break;
        }
        case 'instance-put':
        case 'instance-delete':
        case 'check-state':
          checksMoved = true;
          break;
        default:
          break;
      }
    }
    if (checksMoved) this.#checkBindings();
  }

  /** Whether a lock delay keeps `key` from a new holder now (a txn's `lock` asks too). */
  lockDelayed(key: string): boolean {
    return this.#lockDelayed(key);
  }

  #lockDelayed(key: string): boolean {
    const until = this.#lockDelays.get(key);
    if (until === undefined) return false;
    if (until > this.#clock.monotonicMs()) return true;
    this.#lockDelays.delete(key);
    return false;
  }

  #armTtl(session: Session): void {
    if (!this.#started || session.ttlMs <= 0 || this.#store.sessionLeases !== undefined) return;
    const prev = this.#ttlTimers.get(session.id);
    if (prev !== undefined) this.#clock.clearTimeout(prev);
    const timer = this.#clock.setTimeout(() => {
      this.#ttlTimers.delete(session.id);
      this.#invalidate(session.id, 'ttl lapsed');
    }, session.ttlMs * SESSION_TTL_MULTIPLIER);
    timer.unref?.();
    this.#ttlTimers.set(session.id, timer);
  }

  /** Invalidates every session one of whose bound checks is critical or gone. */
  #checkBindings(): void {
    for (const session of this.#view.sessionsBound()) {
      const broken = session.checks.find((c) => {
        const def = this.#view.definition(c.instanceId)?.checks.find((d) => d.id === c.checkId);
        if (def === undefined) return true;
        const state = this.#view.states(c.instanceId).find((s) => s.checkId === c.checkId);
        return (state?.status ?? def.initialStatus) === 'critical';
      });
      if (broken !== undefined) this.#invalidate(session.id, `check ${broken.id} critical or gone`);
    }
  }

  #invalidate(id: string, reason: string): void {
    if (this.#ending.has(id) || !this.#started) return;
    this.#ending.add(id);
    this.#log.info({ session: id, reason }, 'session invalidated');
    this.destroy(id).then(
      () => this.#ending.delete(id),
      (err: unknown) => {
        this.#ending.delete(id);
        this.#log.warn({ session: id, err }, 'session invalidation failed; retrying in 1 s');
        const retry = this.#clock.setTimeout(() => {
          if (this.#view.session(id) !== undefined) this.#invalidate(id, reason);
        }, 1_000);
        retry.unref?.();
      },
    );
  }
}
