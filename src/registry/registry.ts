/**
 * @module Registry: the catalog facade every front end (native API, Consul API, DNS, CLI) uses:
 * register, deregister, heartbeat, maintenance, queries, blocking queries, streams, KV and
 * declarative apply. The store is the source of truth; the view is fed by its events only.
 */
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { systemClock, type Clock } from '../core/clock.js';
import { ERROR_CODES, errors, isMeshError, type MeshError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type {
  CheckDefinition,
  CheckStatus,
  Instance,
  InstanceStatus,
  KvEntry,
  RegistrationSource,
} from '../core/types.js';
import type { ApplyResponse, InstanceDto, ServiceSummaryDto } from '../protocol/api-types.js';
import {
  DEFAULT_CHECK_FLOORS,
  DEFAULT_KV_QUOTA_BYTES,
  LIMITS,
  type CheckFloors,
} from '../protocol/limits.js';
import {
  CheckShapeError,
  normalizeChecks,
  type ParsedRegistration,
} from '../protocol/registration.js';
import { hasControlChars, NO_CONTROL_CHARS } from '../protocol/validation.js';
import {
  AGENT_MAINTENANCE_PREFIX,
  CatalogView,
  isNodeChecksId,
  kvEntryBytes,
  NODE_CHECKS_SERVICE,
  nodeChecksId,
  type ApplyOutcome,
} from './catalog-view.js';
import { createHealthManager, type HealthManager } from './health/health-manager.js';
import type { CheckProbe } from './health/health-types.js';
import type { CheckKind } from '../core/types.js';
import { OWN_EVERYTHING, type CheckOwnership } from './cluster/check-ownership.js';
import type { RegistryMetrics } from './registry-metrics.js';
import type { CatalogStore, StoreEvent, StoreOp } from './store/catalog-store.js';
import { sseFrame, StreamFanout, type StreamSink } from './watch/stream-fanout.js';
import { serviceTopic, WatchHub, type Topic, type WaitCancellation } from './watch/watch-hub.js';

export interface RegistryOptions {
  readonly store: CatalogStore;
  /** This agent's node name (Consul node; agent maintenance is per node). */
  readonly nodeName: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly metrics?: RegistryMetrics;
  readonly probes?: Map<CheckKind, CheckProbe>;
  readonly random?: () => number;
  /** Blocking queries wait at most this long (Consul: 10 min). */
  readonly maxWaitMs?: number;
  /**
   * Cluster mode: which instances' checks this agent runs. Default: all of them (one agent).
   */
  readonly ownership?: CheckOwnership;
  /**
   * Floors on check durations, checks per instance, KV quota. Default:
   * {@link DEFAULT_REGISTRY_LIMITS}.
   */
  readonly limits?: Partial<RegistryLimits>;
}

/** What one agent lets its clients store and run (agent options `checks.*`, `kv.*`). */
export interface RegistryLimits {
  /** Check durations below these are refused (native API, config, apply). */
  readonly checkFloors: CheckFloors;
  /** Checks on one instance, or on the node (at most LIMITS.maxChecks). */
  readonly maxChecksPerInstance: number;
  /** Bytes of KV keys and values together; a put past it is refused with KV_QUOTA_EXCEEDED. */
  readonly kvQuotaBytes: number;
}

export const DEFAULT_REGISTRY_LIMITS: RegistryLimits = Object.freeze({
  checkFloors: DEFAULT_CHECK_FLOORS,
  maxChecksPerInstance: LIMITS.maxChecks,
  kvQuotaBytes: DEFAULT_KV_QUOTA_BYTES,
});

export const DEFAULT_REGISTRY_OPTIONS = Object.freeze({
  maxWaitMs: 600_000,
  /** A write that keeps losing its compare to other agents' writes gives up after this many. */
  maxCommitAttempts: 5,
});

/** Bytes a KV put in flight may add, held against the quota until the view counts them. */
interface KvReservation {
  readonly key: string;
  readonly bytes: number;
}

/** How many watchers a change was sent to (`Registry.notified`). */
export interface WatchersNotified {
  readonly streams: number;
  readonly blockingQueries: number;
}

/** Filters of an instance list. */
export interface InstanceFilter {
  readonly status?: readonly InstanceStatus[];
  readonly tags?: readonly string[];
  readonly meta?: Readonly<Record<string, string>>;
  readonly zone?: string;
}

export interface ServiceInstances {
  readonly index: number;
  readonly instances: readonly InstanceDto[];
}

/** The catalog facade. Create with {@link createRegistry}, then `await start()`. */
export class Registry {
  readonly view: CatalogView;
  readonly hub: WatchHub;
  readonly fanout = new StreamFanout();
  readonly nodeName: string;
  readonly limits: RegistryLimits;
  readonly #store: CatalogStore;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #metrics: RegistryMetrics | undefined;
  readonly #health: HealthManager;
  readonly #random: () => number;
  readonly #maxWaitMs: number;
  readonly #ownership: CheckOwnership;
  /** The store is shared with other agents (cluster mode). */
  readonly #shared: boolean;
  readonly #unsubscribers: (() => void)[] = [];
  #started = false;
  #draining = false;
  /** Growth of KV puts in flight (see kvPut), by key in commit order, and its sum. */
  readonly #kvReservations = new Map<string, KvReservation[]>();
  #kvReservedBytes = 0;
  /** The KV quota refused a put, and none that grows KV was taken since (logged once). */
  #kvFullLogged = false;
  /** Writes to one instance id run one after another: read-check-write stays consistent. */
  readonly #idQueues = new Map<string, Promise<unknown>>();
  /** Applied changes not yet told to watchers (published on the next turn). */
  #unpublished: ApplyOutcome[] = [];
  /** The highest index published to watchers, and who waits for one (see `notified`). */
  #publishedIndex = 0;
  readonly #publishWaiters: {
    index: number;
    service: string;
    resolve: (n: WatchersNotified) => void;
  }[] = [];

  constructor(options: RegistryOptions) {
    this.#store = options.store;
    this.nodeName = options.nodeName;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? silentLogger).child({ component: 'registry' });
    this.#metrics = options.metrics;
    this.#random = options.random ?? Math.random;
    this.#maxWaitMs = options.maxWaitMs ?? DEFAULT_REGISTRY_OPTIONS.maxWaitMs;
    this.#ownership = options.ownership ?? OWN_EVERYTHING;
    this.limits = Object.freeze({ ...DEFAULT_REGISTRY_LIMITS, ...options.limits });
    const ttlLeases = options.store.ttlLeases;
    this.#shared = ttlLeases !== undefined;
    this.view = new CatalogView(options.nodeName, {
      nodeChecksAffectInstances: ttlLeases === undefined,
    });
    this.hub = new WatchHub(this.#clock);
    this.#health = createHealthManager({
      clock: this.#clock,
      logger: this.#log,
      random: this.#random,
      ...(options.probes === undefined ? {} : { probes: options.probes }),
      ...(options.metrics === undefined ? {} : { observer: options.metrics }),
      // A node's checks run on that node's agent only (they probe what is local to it).
      owns: (id) =>
        isNodeChecksId(id) ? id === nodeChecksId(this.nodeName) : this.#ownership.owns(id),
      agentName: options.nodeName,
      externalTtl: ttlLeases !== undefined,
      minIntervalMs: this.limits.checkFloors.intervalMs,
      host: {
        ...(ttlLeases === undefined
          ? {}
          : { renewTtl: (id: string, checkId: string) => ttlLeases.renew(id, checkId) }),
        writeStates: async (states) => {
          await this.#commit(states.map((state) => ({ op: 'put-check-state', state }) as const));
        },
        deregister: async (instanceId, reason) => {
          this.#log.info({ instanceId, reason }, 'deregistering critical instance');
          await this.#commit([{ op: 'delete-instance', id: instanceId }]);
          this.#metrics?.deregistrations.inc({ reason: 'critical' });
        },
      },
    });
  }

  get storeKind(): string {
    return this.#store.kind;
  }

  /** Whether this agent runs the instance's checks (cluster mode: exactly one agent does). */
  runsChecksOf(instanceId: string): boolean {
    return this.#health.owns(instanceId);
  }

  /** Whether the store takes writes now (readiness). */
  get writable(): boolean {
    return this.#started && this.#store.available();
  }

  /** Why the started store takes no writes now, when it says so (readiness answers it). */
  get unwritableReason(): string | undefined {
    return this.#started ? this.#store.unavailableReason?.() : undefined;
  }

  /** The current index (never 0). */
  get index(): number {
    return this.view.index;
  }

  /** Loads the store, starts checks for every stored instance, and follows the store's events. */
  async start(): Promise<void> {
    const snapshot = await this.#store.open();
    this.view.load(snapshot);
    this.#unsubscribers.push(this.#store.subscribe((events) => this.#onEvents(events)));
    const ttlLeases = this.#store.ttlLeases;
    if (ttlLeases !== undefined) {
      this.#unsubscribers.push(
        ttlLeases.onExpired((id, checkId) => this.#health.ttlExpired(id, checkId)),
      );
    }
    this.#unsubscribers.push(this.#ownership.onChange(() => this.#reconcileOwnership()));
    this.#health.start();
    for (const s of snapshot.instances) {
      this.#health.track(s.instance, this.view.states(s.instance.id));
      this.#catchUpTtls(s.instance);
    }
    this.#started = true;
    this.#log.info(
      { store: this.#store.kind, instances: snapshot.instances.length, index: snapshot.index },
      'registry started',
    );
  }

  /**
   * First step of a shutdown: blocking queries answer now with what they have, streams end, and
   * no new wait starts. Writes still work until {@link close}.
   */
  drain(): void {
    this.#draining = true;
    this.hub.wakeAll();
    this.fanout.closeAll();
  }

  /** Stops checks and closes the store (flushing pending commits). */
  async close(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.#health.stop();
    for (const unsubscribe of this.#unsubscribers.splice(0)) unsubscribe();
    await this.#store.close();
  }

  // ---- writes ----------------------------------------------------------------------------

  /**
   * Registers or updates an instance (idempotent: re-registering the same definition writes
   * nothing). Throws 409-coded errors when the id belongs to another service.
   */
  async register(
    input: ParsedRegistration,
    defaults: { source?: RegistrationSource; managedBy?: string } = {},
  ): Promise<{ index: number; instance: InstanceDto; changed: boolean }> {
    const id = input.id ?? `${input.service}-${randomBytes(6).toString('hex')}`;
    return this.#serial(id, () =>
      this.#retrying(async () => {
        const instance = this.#buildInstance({ ...input, id }, defaults);
        const prev = this.view.get(instance.id);
        if (prev !== undefined && sameDefinition(prev, instance)) {
          return {
            index: this.view.index,
            instance: this.#dtoOrThrow(instance.id),
            changed: false,
          };
        }
        const r = await this.#store.commit([{ op: 'put-instance', instance }]);
        if (!r.ok) return undefined;
        this.#metrics?.registrations.inc({ source: instance.source });
        return { index: r.index, instance: this.#dtoOrThrow(instance.id), changed: true };
      }),
    );
  }

  /** Removes an instance. Answers whether it existed. */
  async deregister(id: string): Promise<{ index: number; deleted: boolean }> {
    return this.#serial(id, async () => {
      if (this.view.get(id) === undefined) return { index: this.view.index, deleted: false };
      const index = await this.#commit([{ op: 'delete-instance', id }]);
      this.#metrics?.deregistrations.inc({ reason: 'api' });
      return { index, deleted: true };
    });
  }

  /**
   * A heartbeat for the instance's TTL checks. Only a status change is written (and awaited, so
   * the answer carries the status the heartbeat caused); a heartbeat that keeps the status costs
   * no write. With `checkId`, only that TTL check hears it (Consul's per-check pass/warn/fail).
   */
  async heartbeat(
    id: string,
    status: CheckStatus = 'passing',
    output = '',
    checkId?: string,
  ): Promise<{ index: number; status: InstanceStatus }> {
    return this.#heartbeat(id, this.view.get(id), status, output, checkId);
  }

  /**
   * A heartbeat for one TTL check of this agent's node (Consul's pass/warn/fail on a node-level
   * check). Throws not-found when the node has no checks.
   */
  async heartbeatNodeCheck(checkId: string, status: CheckStatus, output: string): Promise<void> {
    const id = nodeChecksId(this.nodeName);
    await this.#heartbeat(id, this.view.nodeChecksInstance(), status, output, checkId);
  }

  /** {@link heartbeat} of `instance` (undefined: not found), by id `id`. */
  async #heartbeat(
    id: string,
    instance: Instance | undefined,
    status: CheckStatus,
    output: string,
    checkId: string | undefined,
  ): Promise<{ index: number; status: InstanceStatus }> {
    if (instance === undefined) throw errors.instanceNotFound(id);
    if (this.#store.ttlLeases !== undefined && !instance.checks.some(isTtl))
      throw errors.noTtlCheck(id);
    // Cluster mode: the deadline lives in etcd, so any agent can take the heartbeat.
    await this.#store.ttlLeases?.keepAlive(id, checkId);
    const r = this.#health.heartbeat(id, status, output, checkId);
    if (r === 'not-found') throw errors.instanceNotFound(id);
    if (r === 'no-ttl-check') throw errors.noTtlCheck(id);
    this.#metrics?.heartbeats.inc();
    await this.#health.settled();
    const s = this.view.status(id);
    return { index: this.view.index, status: s?.status ?? 'critical' };
  }

  /**
   * Replaces this agent's node checks with `edit(current)` (Consul's node-level checks, which
   * apply to every instance of the node). They are stored, run and persisted like an instance's
   * checks; checks that keep their id keep their state. A node check never deregisters anything
   * (Consul ignores DeregisterCriticalServiceAfter without a service), so that is cleared.
   */
  async updateNodeChecks(
    edit: (checks: readonly CheckDefinition[]) => readonly CheckDefinition[],
  ): Promise<{ index: number }> {
    const id = nodeChecksId(this.nodeName);
    return this.#serial(id, () =>
      this.#retrying(async () => {
        const prev = this.view.nodeChecksInstance();
        const checks = edit(prev?.checks ?? []).map((c) =>
          c.deregisterCriticalAfterMs === 0 ? c : { ...c, deregisterCriticalAfterMs: 0 },
        );
        this.#assertCheckCount(checks, prev?.checks.length ?? 0);
        if (isDeepStrictEqual(prev?.checks ?? [], checks)) return { index: this.view.index };
        const now = this.#clock.now();
        const op: StoreOp =
          checks.length === 0
            ? { op: 'delete-instance', id }
            : {
                op: 'put-instance',
                instance: {
                  ...(prev ?? nodeChecksInstance(id, now)),
                  checks,
                  updatedAt: now,
                },
              };
        const r = await this.#store.commit([op]);
        return r.ok ? { index: r.index } : undefined;
      }),
    );
  }

  /**
   * Replaces an instance's checks with `edit(current)`, e.g. to add or remove one check (Consul's
   * /v1/agent/check/register). Checks that keep their id keep their state.
   */
  async updateChecks(
    id: string,
    edit: (checks: readonly CheckDefinition[]) => readonly CheckDefinition[],
  ): Promise<{ index: number; instance: InstanceDto }> {
    return this.#serial(id, () =>
      this.#retrying(async () => {
        const prev = this.view.get(id);
        if (prev === undefined) throw errors.instanceNotFound(id);
        const checks = edit(prev.checks);
        this.#assertCheckCount(checks, prev.checks.length);
        if (isDeepStrictEqual(prev.checks, checks)) {
          return { index: this.view.index, instance: this.#dtoOrThrow(id) };
        }
        const instance = { ...prev, checks, updatedAt: this.#clock.now() };
        const r = await this.#store.commit([{ op: 'put-instance', instance }]);
        return r.ok ? { index: r.index, instance: this.#dtoOrThrow(id) } : undefined;
      }),
    );
  }

  /** Puts one instance in or out of maintenance. */
  async setMaintenance(
    id: string,
    enabled: boolean,
    reason: string,
  ): Promise<{ index: number; instance: InstanceDto }> {
    return this.#serial(id, () =>
      this.#retrying(async () => {
        const prev = this.view.get(id);
        if (prev === undefined) throw errors.instanceNotFound(id);
        const maintenance = enabled ? { enabled, reason } : NO_MAINTENANCE;
        if (isDeepStrictEqual(prev.maintenance, maintenance)) {
          return { index: this.view.index, instance: this.#dtoOrThrow(id) };
        }
        const instance = { ...prev, maintenance, updatedAt: this.#clock.now() };
        const r = await this.#store.commit([{ op: 'put-instance', instance }]);
        return r.ok ? { index: r.index, instance: this.#dtoOrThrow(id) } : undefined;
      }),
    );
  }

  /** Puts the whole agent (every instance it serves) in or out of maintenance. */
  async setAgentMaintenance(enabled: boolean, reason: string): Promise<{ index: number }> {
    if (this.#shared) {
      // Every agent serves the whole catalog in cluster mode, so "the instances of this agent"
      // has no meaning yet (nodes per instance come with the Consul API).
      throw errors.validation(
        'enable',
        'agent maintenance is not available in cluster mode (--store etcd); put instances in maintenance one by one',
      );
    }
    const key = AGENT_MAINTENANCE_PREFIX + this.nodeName;
    const op: StoreOp = enabled
      ? { op: 'kv-put', key, value: Buffer.from(reason || 'agent maintenance'), flags: 0 }
      : { op: 'kv-delete', key };
    return { index: await this.#commit([op]) };
  }

  /**
   * Makes the instances owned by `set` match `inputs`: creates and updates them, and removes
   * instances the set owned before that are no longer listed. Nothing outside the set is touched.
   */
  async apply(
    set: string,
    inputs: readonly ParsedRegistration[],
    source: RegistrationSource = 'config',
  ): Promise<ApplyResponse> {
    return this.#retrying(() => this.#applyOnce(set, inputs, source));
  }

  async #applyOnce(
    set: string,
    inputs: readonly ParsedRegistration[],
    source: RegistrationSource,
  ): Promise<ApplyResponse | undefined> {
    const created: string[] = [];
    const updated: string[] = [];
    const unchanged: string[] = [];
    const ops: StoreOp[] = [];
    const listed = new Set<string>();
    inputs.forEach((input, i) => {
      let instance: Instance;
      try {
        instance = this.#buildInstance(input, { source, managedBy: set });
      } catch (err) {
        const { field, reason } = (err as MeshError).details ?? {};
        if (isMeshError(err, ERROR_CODES.VALIDATION) && typeof reason === 'string') {
          throw errors.validation(`instances[${i}].${String(field)}`, reason);
        }
        throw err;
      }
      if (listed.has(instance.id))
        throw errors.validation(`instances[${i}].id`, `duplicate id "${instance.id}"`);
      listed.add(instance.id);
      const prev = this.view.get(instance.id);
      if (prev === undefined) created.push(instance.id);
      else if (sameDefinition(prev, instance)) {
        unchanged.push(instance.id);
        return;
      } else updated.push(instance.id);
      ops.push({ op: 'put-instance', instance });
    });
    const deleted = this.view
      .instancesWhere((i) => i.managedBy === set && !listed.has(i.id))
      .map((i) => i.id)
      .sort();
    for (const id of deleted) ops.push({ op: 'delete-instance', id });
    let index = this.view.index;
    if (ops.length > 0) {
      const r = await this.#store.commit(ops);
      if (!r.ok) return undefined;
      index = r.index;
    }
    if (deleted.length > 0) this.#metrics?.deregistrations.inc({ reason: 'apply' }, deleted.length);
    if (created.length + updated.length > 0)
      this.#metrics?.registrations.inc({ source }, created.length + updated.length);
    return { index, set, created, updated, unchanged, deleted };
  }

  // ---- reads -----------------------------------------------------------------------------

  getInstance(id: string): { index: number; instance: InstanceDto } {
    const dto = this.view.dto(id);
    if (dto === undefined) throw errors.instanceNotFound(id);
    return { index: dto.modifyIndex, instance: dto };
  }

  /** A service's instances, filtered, and the service's modify index. */
  listInstances(service: string, filter: InstanceFilter = {}): ServiceInstances {
    const all = this.view.serviceInstances(service);
    return { index: this.view.serviceIndex(service), instances: filterInstances(all, filter) };
  }

  /** Every service with counts by status and its tags. */
  listServices(): { index: number; services: ServiceSummaryDto[] } {
    const services = this.view.serviceNames().map((name) => ({
      name,
      ...this.view.serviceSummary(name),
      modifyIndex: this.view.serviceIndex(name),
    }));
    return { index: this.view.catalogIndex, services };
  }

  /**
   * A blocking query: resolves when `currentIndex()` passes `minIndex`, or after `waitMs` plus a
   * small jitter (wait/16, as Consul does, so many watchers do not return in lockstep).
   */
  async waitForChange(
    topic: Topic,
    minIndex: number,
    waitMs: number,
    currentIndex: () => number,
    cancellation?: WaitCancellation,
  ): Promise<void> {
    if (minIndex <= 0 || currentIndex() > minIndex || this.#draining) return;
    const capped = Math.min(Math.max(waitMs, 0), this.#maxWaitMs);
    const total = capped + Math.floor(this.#random() * (capped / 16));
    const deadline = this.#clock.monotonicMs() + total;
    while (currentIndex() <= minIndex && cancellation?.cancelled !== true && !this.#draining) {
      const remaining = deadline - this.#clock.monotonicMs();
      if (remaining <= 0) return;
      await this.hub.next(topic, remaining, cancellation);
    }
  }

  /** Subscribes a stream sink to a service (or the whole catalog); sends the snapshot first. */
  subscribeStream(service: string | undefined, sink: StreamSink): () => void {
    // Changes already in the view must reach the existing streams before this one's snapshot,
    // or the new stream would get them twice (in the snapshot and as deltas).
    this.#publishPending();
    const unsubscribe = this.fanout.subscribe(service, sink);
    const instances =
      service === undefined ? this.view.allInstances() : this.view.serviceInstances(service);
    const index = service === undefined ? this.view.catalogIndex : this.view.serviceIndex(service);
    // The snapshot is written synchronously after subscribing, so no delta can slip between.
    sink.write(sseFrame({ type: 'snapshot', index, instances }));
    return unsubscribe;
  }

  // ---- KV --------------------------------------------------------------------------------

  kvGet(key: string): KvEntry | undefined {
    return this.view.kvGet(key);
  }

  kvList(prefix: string): KvEntry[] {
    return this.view.kvList(prefix);
  }

  /**
   * Puts a KV value. Throws KV_VALUE_TOO_LARGE past LIMITS.maxKvValueBytes, and KV_QUOTA_EXCEEDED
   * when the KV store would grow past `limits.kvQuotaBytes` (a put that does not grow it, such as
   * a smaller value, always goes through).
   */
  async kvPut(
    key: string,
    value: Uint8Array,
    options: { flags?: number; cas?: number } = {},
  ): Promise<{ ok: boolean; index: number }> {
    assertUserKey(key);
    if (value.byteLength > LIMITS.maxKvValueBytes)
      throw errors.kvValueTooLarge(key, value.byteLength, LIMITS.maxKvValueBytes);
    const prev = this.view.kvGet(key);
    const growthBytes =
      kvEntryBytes(key, value) - (prev === undefined ? 0 : kvEntryBytes(key, prev.value));
    const usedBytes = this.view.kvBytes + this.#kvReservedBytes;
    if (growthBytes > 0 && usedBytes + growthBytes > this.limits.kvQuotaBytes) {
      this.#metrics?.kvQuotaRefusals.inc();
      // Once per full spell: a client retrying at the quota would flood the log; the counter
      // has every refusal.
      if (!this.#kvFullLogged)
        this.#log.warn(
          { key, usedBytes, growthBytes, quotaBytes: this.limits.kvQuotaBytes },
          'KV quota reached: puts that grow KV are refused',
        );
      this.#kvFullLogged = true;
      throw errors.kvQuotaExceeded(key, usedBytes, growthBytes, this.limits.kvQuotaBytes);
    }
    if (growthBytes > 0) this.#kvFullLogged = false;
    const op: StoreOp = {
      op: 'kv-put',
      key,
      value,
      flags: options.flags ?? 0,
      ...(options.cas === undefined ? {} : { cas: options.cas }),
    };
    // A put in flight counts until its event lands in the view, so concurrent puts cannot
    // overshoot the quota together (nor count twice once the view has them).
    const reservation = this.#reserveKv(key, Math.max(growthBytes, 0));
    try {
      return await this.#commitCas([op]);
    } finally {
      this.#releaseKv(reservation);
    }
  }

  #reserveKv(key: string, bytes: number): KvReservation {
    const reservation = { key, bytes };
    const forKey = this.#kvReservations.get(key);
    if (forKey === undefined) this.#kvReservations.set(key, [reservation]);
    else forKey.push(reservation);
    this.#kvReservedBytes += bytes;
    return reservation;
  }

  /** Ends a reservation (once: later calls do nothing). */
  #releaseKv(reservation: KvReservation): void {
    const forKey = this.#kvReservations.get(reservation.key);
    const at = forKey?.indexOf(reservation) ?? -1;
    if (forKey === undefined || at < 0) return;
    forKey.splice(at, 1);
    if (forKey.length === 0) this.#kvReservations.delete(reservation.key);
    this.#kvReservedBytes -= reservation.bytes;
  }

  async kvDelete(
    key: string,
    options: { recursive?: boolean; cas?: number } = {},
  ): Promise<{ ok: boolean; index: number }> {
    if (options.recursive !== true) assertUserKey(key);
    if (options.recursive === true) {
      // Never let a recursive delete of "" reach the reserved agent keys.
      const ops: StoreOp[] = this.view.kvList(key).map((e) => ({ op: 'kv-delete', key: e.key }));
      if (ops.length === 0) return { ok: true, index: this.view.index };
      return this.#commitCas(ops);
    }
    const op: StoreOp = {
      op: 'kv-delete',
      key,
      ...(options.cas === undefined ? {} : { cas: options.cas }),
    };
    return this.#commitCas([op]);
  }

  // ---- internals -------------------------------------------------------------------------

  #buildInstance(
    input: ParsedRegistration,
    defaults: { source?: RegistrationSource; managedBy?: string },
  ): Instance {
    let checks;
    try {
      checks = normalizeChecks(input.checks ?? [], this.limits.checkFloors);
    } catch (err) {
      if (err instanceof CheckShapeError) throw errors.validation(err.field, err.reason);
      throw err;
    }
    this.#assertCheckCount(checks, 0);
    const id = input.id ?? `${input.service}-${randomBytes(6).toString('hex')}`;
    const prev = this.view.get(id);
    if (prev !== undefined && prev.service !== input.service)
      throw errors.instanceIdConflict(id, prev.service);
    const now = this.#clock.now();
    return {
      id,
      service: input.service,
      address: input.address,
      port: input.port,
      ports: orShared(input.ports, EMPTY_MAP),
      tags: orShared(input.tags, EMPTY_LIST),
      meta: orShared(input.meta, EMPTY_MAP),
      weights: input.weights ?? DEFAULT_WEIGHTS,
      priority: input.priority ?? 0,
      capacity: input.capacity ?? 0,
      protocols: orShared(input.protocols, EMPTY_LIST),
      source: input.source ?? defaults.source ?? 'self',
      managedBy: defaults.managedBy ?? prev?.managedBy ?? '',
      checks,
      maintenance: prev?.maintenance ?? NO_MAINTENANCE,
      createdAt: prev?.createdAt ?? now,
      updatedAt: now,
    };
  }

  /**
   * Refuses more checks than `maxChecksPerInstance`, unless the count does not grow (an instance
   * stored under a higher cap can still lose checks).
   */
  #assertCheckCount(checks: readonly CheckDefinition[], before: number): void {
    const max = this.limits.maxChecksPerInstance;
    if (checks.length > max && checks.length > before)
      throw errors.validation('checks', `at most ${max} checks per instance`);
  }

  /** Runs `fn` after every earlier write to the same instance id has finished. */
  async #serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#idQueues.get(id);
    const run = (before === undefined ? fn() : before.then(fn, fn)) as Promise<T>;
    const tail = run.catch(() => undefined);
    this.#idQueues.set(id, tail);
    try {
      return await run;
    } finally {
      if (this.#idQueues.get(id) === tail) this.#idQueues.delete(id);
    }
  }

  #dtoOrThrow(id: string): InstanceDto {
    const dto = this.view.dto(id);
    // The store delivered the commit's events before resolving, so the view has it (or a later
    // delete raced it, which callers see as not found).
    if (dto === undefined) throw errors.instanceNotFound(id);
    return dto;
  }

  /**
   * Runs `attempt` until it answers: it answers undefined when its commit lost a compare to
   * another agent's write (cluster mode), and then runs again against the updated view.
   */
  async #retrying<T>(attempt: () => Promise<T | undefined>): Promise<T> {
    for (let i = 0; i < DEFAULT_REGISTRY_OPTIONS.maxCommitAttempts; i++) {
      const r = await attempt();
      if (r !== undefined) return r;
    }
    throw errors.storeUnavailable(
      `gave up after ${DEFAULT_REGISTRY_OPTIONS.maxCommitAttempts} attempts: other agents kept changing the same instances`,
    );
  }

  /** Starts or stops checks after the live members changed (cluster mode). */
  #reconcileOwnership(): void {
    const gained = this.#health.reconcileOwnership();
    for (const id of gained) {
      const instance = this.view.get(id);
      if (instance !== undefined) this.#catchUpTtls(instance);
    }
    if (gained.length > 0) this.#log.info({ gained: gained.length }, 'took over checks');
  }

  /**
   * An owner that finds a TTL deadline gone (it expired while its previous owner was dying, or
   * while no agent ran) counts the expiry now.
   */
  #catchUpTtls(instance: Instance): void {
    const ttlLeases = this.#store.ttlLeases;
    if (ttlLeases === undefined || !this.#health.owns(instance.id)) return;
    for (const c of instance.checks) {
      if (c.kind === 'ttl' && !ttlLeases.alive(instance.id, c.id))
        this.#health.ttlExpired(instance.id, c.id);
    }
  }

  async #commit(ops: readonly StoreOp[]): Promise<number> {
    const r = await this.#store.commit(ops);
    return r.index;
  }

  async #commitCas(ops: readonly StoreOp[]): Promise<{ ok: boolean; index: number }> {
    const r = await this.#store.commit(ops);
    return { ok: r.ok, index: r.index };
  }

  #onEvents(events: readonly StoreEvent[]): void {
    let outcome: ApplyOutcome;
    try {
      outcome = this.view.apply(events);
    } catch (err) {
      this.#log.error({ err }, 'failed to apply store events');
      return;
    }
    // A put's bytes are in the view now: its reservation ends (the oldest for the key first,
    // as a key's events come in commit order).
    for (const e of events) {
      const first = e.type === 'kv-put' ? this.#kvReservations.get(e.entry.key)?.[0] : undefined;
      if (first !== undefined) this.#releaseKv(first);
    }
    for (const instance of outcome.put) this.#health.track(instance, this.view.states(instance.id));
    for (const id of outcome.deleted) this.#health.untrack(id);
    if (this.#shared) {
      // Another agent may have written a state (a heartbeat it took): judge the next result
      // against it.
      for (const e of events) if (e.type === 'check-state') this.#health.adopt(e.state);
    }
    // Watchers hear of the change on the next turn, after the writer's answer has gone out: a
    // write need not wait for a thousand sockets to be written.
    this.#unpublished.push(outcome);
    if (this.#unpublished.length === 1) setImmediate(this.#publishPending);
  }

  /** Publishes applied changes to streams and blocking queries, in index order. */
  /**
   * Resolves once the change at `index` has been sent to the watchers of `service`, with how many
   * were sent it: its streams (per-service and catalog-wide) and the blocking queries woken. A
   * draining instance uses it to know its consumers have heard of its deregistration.
   */
  notified(service: string, index: number): Promise<WatchersNotified> {
    if (index <= this.#publishedIndex && this.#unpublished.length === 0)
      return Promise.resolve({
        streams: this.fanout.streamsOf(service),
        blockingQueries: this.hub.waitingOn(serviceTopic(service)) + this.hub.waitingOn('catalog'),
      });
    return new Promise((resolve) => this.#publishWaiters.push({ index, service, resolve }));
  }

  readonly #publishPending = (): void => {
    const outcomes = this.#unpublished;
    if (outcomes.length === 0) return;
    this.#unpublished = [];
    const counts = this.#publishWaiters.map((w) => ({
      streams: this.fanout.streamsOf(w.service),
      blockingQueries: this.hub.waitingOn(serviceTopic(w.service)) + this.hub.waitingOn('catalog'),
    }));
    const services = new Set<string>();
    let catalog = false;
    let kv = false;
    for (const outcome of outcomes) {
      catalog ||= outcome.changes.length > 0 || outcome.nodeChanged;
      kv ||= outcome.kvChanged;
      // Every service's Consul health answer carries the node's checks.
      if (outcome.nodeChanged) for (const s of this.view.serviceNames()) services.add(s);
      for (const c of outcome.changes) {
        services.add(c.service);
        if (c.kind === 'delete') {
          this.fanout.publish(c.service, {
            type: 'delete',
            index: c.index,
            id: c.id,
            service: c.service,
          });
        } else if (this.fanout.wants(c.service)) {
          const instance = this.view.dto(c.id);
          if (instance !== undefined)
            this.fanout.publish(c.service, { type: 'upsert', index: c.index, instance });
        }
      }
    }
    for (const s of services) this.hub.publish(serviceTopic(s));
    if (catalog) this.hub.publish('catalog');
    if (kv) this.hub.publish('kv');
    // Every outcome the view has applied is published now.
    this.#publishedIndex = this.view.index;
    const waiters = this.#publishWaiters.splice(0);
    waiters.forEach((w, i) => {
      if (w.index <= this.#publishedIndex) w.resolve(counts[i] as WatchersNotified);
      else this.#publishWaiters.push(w);
    });
  };
}

// Instances are immutable, so the common empty and default values are shared, frozen objects:
// with 100k instances, one empty object or array each adds up (see docs/benchmarks.md, scale).
const EMPTY_MAP: Readonly<Record<string, never>> = Object.freeze({});
const EMPTY_LIST: readonly string[] = Object.freeze([]);
const DEFAULT_WEIGHTS = Object.freeze({ passing: 1, warning: 1 });
const NO_MAINTENANCE = Object.freeze({ enabled: false, reason: '' });

/**
 * `value`, or the shared `empty` when it is absent or empty. Arrays are copied at their exact
 * size: parsers build them with push(), which reserves spare slots.
 */
function orShared<T extends object>(value: T | undefined, empty: Readonly<T>): Readonly<T> {
  if (value === undefined) return empty;
  if (Array.isArray(value)) return value.length === 0 ? empty : (value.slice() as T);
  return Object.keys(value).length === 0 ? empty : value;
}

/** True when two instances differ only in their update timestamp. */
function sameDefinition(a: Instance, b: Instance): boolean {
  return isDeepStrictEqual(
    { ...a, updatedAt: 0, createdAt: 0 },
    { ...b, updatedAt: 0, createdAt: 0 },
  );
}

/** A new reserved instance for a node's checks (only its id and checks matter). */
function nodeChecksInstance(id: string, now: number): Instance {
  return {
    id,
    service: NODE_CHECKS_SERVICE,
    address: '',
    port: 0,
    ports: EMPTY_MAP,
    tags: EMPTY_LIST,
    meta: EMPTY_MAP,
    weights: DEFAULT_WEIGHTS,
    priority: 0,
    capacity: 0,
    protocols: EMPTY_LIST,
    source: 'self',
    managedBy: '',
    checks: [],
    maintenance: NO_MAINTENANCE,
    createdAt: now,
    updatedAt: now,
  };
}

function isTtl(c: { readonly kind: string }): boolean {
  return c.kind === 'ttl';
}

function assertUserKey(key: string): void {
  if (key === '') throw errors.validation('key', 'must not be empty');
  if (hasControlChars(key)) throw errors.validation('key', NO_CONTROL_CHARS);
}

/** Applies status, tag, meta and zone filters. */
export function filterInstances(
  all: readonly InstanceDto[],
  filter: InstanceFilter,
): InstanceDto[] {
  const { status, tags, meta, zone } = filter;
  if (status === undefined && tags === undefined && meta === undefined && zone === undefined)
    return [...all];
  return all.filter(
    (i) =>
      (status === undefined || status.includes(i.status)) &&
      (tags === undefined || tags.every((t) => i.tags.includes(t))) &&
      (zone === undefined || i.meta.zone === zone) &&
      (meta === undefined || Object.entries(meta).every(([k, v]) => i.meta[k] === v)),
  );
}

export function createRegistry(options: RegistryOptions): Registry {
  return new Registry(options);
}
