/**
 * @module Registry: the catalog facade every front end (native API, Consul API, DNS, CLI) uses:
 * register, deregister, heartbeat, maintenance, queries, blocking queries, streams, KV and
 * declarative apply. The store is the source of truth; the view is fed by its events only. The
 * parts live beside it: instance building, KV, declarative apply, publication to watchers.
 */
import { systemClock, type Clock } from '../core/clock.js';
import { errors } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type {
  CheckDefinition,
  CheckState,
  CheckStatus,
  Instance,
  InstanceStatus,
  KvEntry,
  Maintenance,
  RegistrationSource,
  SessionInput,
} from '../core/types.js';
import type { ApplyResponse, InstanceDto, ServiceSummaryDto } from '../protocol/api-types.js';
import type { ParsedRegistration } from '../protocol/registration.js';
import type { MeshKind, MeshResourceKey, StoredMeshResource } from '../protocol/mesh/resource.js';
import type {
  CatalogFacade,
  InstanceFilter,
  NodeChecksDto,
  RegistryLimits,
  ServiceInstances,
  StreamSink,
  Topic,
  WaitCancellation,
  WatchersNotified,
} from './catalog-facade.js';
import { CatalogView, isNodeChecksId, nodeChecksId, type ApplyOutcome } from './catalog-view.js';
import { OWN_EVERYTHING, type CheckOwnership } from './cluster/check-ownership.js';
import { DeclarativeApply } from './declarative-apply.js';
import { createHealthManager, type HealthManager } from './health/health-manager.js';
import { InstanceBuilder } from './instance-builder.js';
import { filterInstances } from './instance-filter.js';
import { InstanceWriter } from './instance-writer.js';
import type { CatalogChange, MeshApplyRequest, MeshApplyResult } from './mesh-catalog.js';
import { MeshWriter } from './mesh-writer.js';
import { RegistryKv } from './registry-kv.js';
import { RegistrySessions } from './registry-sessions.js';
import { RegistryTxn, type TxnOp, type TxnOutcome } from './registry-txn.js';
import { RegistryReservedKv, type ReservedKv } from './reserved-kv.js';
import {
  DEFAULT_REGISTRY_LIMITS,
  DEFAULT_REGISTRY_OPTIONS,
  type RegistryOptions,
} from './registry-options.js';
import type { RegistryMetrics } from './registry-metrics.js';
import type { CatalogStore, StoreEvent, StoredSession, StoreOp } from './store/catalog-store.js';
import { ChangePublisher, type WatcherCounts } from './watch/change-publisher.js';

/**
 * The catalog facade: implements {@link CatalogFacade} (the mesh resources' reads, watches and
 * writes included) for the front ends, and owns the catalog's
 * lifecycle (start, drain, close) for the composition root. Create with {@link createRegistry},
 * then `await start()`.
 */
export class Registry implements CatalogFacade {
  readonly #view: CatalogView;
  readonly nodeName: string;
  readonly limits: RegistryLimits;
  readonly #store: CatalogStore;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #metrics: RegistryMetrics | undefined;
  readonly #health: HealthManager;
  readonly #random: () => number;
  readonly #ownership: CheckOwnership;
  readonly #builder: InstanceBuilder;
  readonly #kv: RegistryKv;
  readonly #sessions: RegistrySessions;
  readonly #txn: RegistryTxn;
  readonly #reservedKv: RegistryReservedKv;
  readonly #applier: DeclarativeApply;
  readonly #writer: InstanceWriter;
  readonly #meshWriter: MeshWriter;
  readonly #publisher: ChangePublisher;
  /** The store is shared with other agents (cluster mode). */
  readonly #shared: boolean;
  readonly #unsubscribers: (() => void)[] = [];
  #started = false;

  constructor(options: RegistryOptions) {
    this.#store = options.store;
    this.nodeName = options.nodeName;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? silentLogger).child({ component: 'registry' });
    this.#metrics = options.metrics;
    this.#random = options.random ?? Math.random;
    this.#ownership = options.ownership ?? OWN_EVERYTHING;
    this.limits = Object.freeze({ ...DEFAULT_REGISTRY_LIMITS, ...options.limits });
    const ttlLeases = options.store.ttlLeases;
    this.#shared = ttlLeases !== undefined;
    this.#view = new CatalogView(options.nodeName, {
      nodeChecksAffectInstances: ttlLeases === undefined,
    });
    this.#publisher = new ChangePublisher({
      view: this.#view,
      clock: this.#clock,
      random: this.#random,
      maxWaitMs: options.maxWaitMs ?? DEFAULT_REGISTRY_OPTIONS.maxWaitMs,
      logger: this.#log,
    });
    this.#builder = new InstanceBuilder({
      view: this.#view,
      clock: this.#clock,
      checkFloors: this.limits.checkFloors,
      maxChecksPerInstance: this.limits.maxChecksPerInstance,
    });
    this.#kv = new RegistryKv({
      view: this.#view,
      store: this.#store,
      quotaBytes: this.limits.kvQuotaBytes,
      logger: this.#log,
      metrics: this.#metrics,
    });
    this.#sessions = new RegistrySessions({
      view: this.#view,
      store: this.#store,
      kv: this.#kv,
      clock: this.#clock,
      logger: this.#log,
    });
    this.#txn = new RegistryTxn({
      view: this.#view,
      store: this.#store,
      builder: this.#builder,
      kvQuotaBytes: this.limits.kvQuotaBytes,
      lockDelayed: (key) => this.#sessions.lockDelayed(key),
      // Built below; a txn runs only once the registry is.
      serialize: (ids, fn) => this.#writer.serial(ids, fn),
    });
    this.#reservedKv = new RegistryReservedKv(this.#view, this.#store);
    this.#applier = new DeclarativeApply({
      view: this.#view,
      store: this.#store,
      builder: this.#builder,
      metrics: this.#metrics,
    });
    this.#meshWriter = new MeshWriter({
      view: this.#view,
      store: this.#store,
      applier: this.#applier,
    });
    this.#writer = new InstanceWriter({
      view: this.#view,
      store: this.#store,
      builder: this.#builder,
      clock: this.#clock,
      nodeName: this.nodeName,
      shared: this.#shared,
      metrics: this.#metrics,
    });
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
      ...(options.checkUpdateIntervalMs === undefined
        ? {}
        : { checkUpdateIntervalMs: options.checkUpdateIntervalMs }),
      host: {
        ...(ttlLeases === undefined
          ? {}
          : { renewTtl: (id: string, checkId: string) => ttlLeases.renew(id, checkId) }),
        writeStates: async (states) => {
          await this.#commit(states.map((state) => ({ op: 'put-check-state', state }) as const));
        },
        deregister: async (instanceId, reason) => {
          this.#log.info({ instanceId, reason }, 'deregistering critical instance');
          // In the instance's write queue: a check or maintenance change queued meanwhile
          // finds it gone instead of writing it back.
          await this.#writer.serial([instanceId], () =>
            this.#commit([{ op: 'delete-instance', id: instanceId }]),
          );
          this.#metrics?.deregistrations.inc({ reason: 'critical' });
        },
      },
    });
  }

  /**
   * The agent's own keys (the mesh CA's state): for the composition root to hand to the parts
   * that keep state in the store; never reachable through the KV API.
   */
  get reservedKv(): ReservedKv {
    return this.#reservedKv;
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
    return this.#view.index;
  }

  /** Loads the store, starts checks for every stored instance, and follows the store's events. */
  async start(): Promise<void> {
    const snapshot = await this.#store.open();
    this.#view.load(snapshot);
    this.#unsubscribers.push(this.#store.subscribe((events) => this.#onEvents(events)));
    const ttlLeases = this.#store.ttlLeases;
    if (ttlLeases !== undefined) {
      this.#unsubscribers.push(
        ttlLeases.onExpired((id, checkId) => this.#health.ttlExpired(id, checkId)),
      );
    }
    this.#unsubscribers.push(this.#ownership.onChange(() => this.#reconcileOwnership()));
    this.#health.start();
    this.#sessions.start();
    for (const s of snapshot.instances) {
      this.#health.track(s.instance, this.#view.states(s.instance.id));
      this.#catchUpTtls(s.instance);
    }
    this.#started = true;
    this.#log.info(
      {
        store: this.#store.kind,
        instances: snapshot.instances.length,
        meshResources: snapshot.meshResources.length,
        index: snapshot.index,
      },
      'registry started',
    );
  }

  /**
   * First step of a shutdown: blocking queries answer now with what they have, streams end, and
   * no new wait starts. Writes still work until {@link close}.
   */
  drain(): void {
    this.#publisher.drain();
  }

  /** Stops checks and closes the store (flushing pending commits). */
  async close(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.#health.stop();
    this.#sessions.stop();
    for (const unsubscribe of this.#unsubscribers.splice(0)) unsubscribe();
    await this.#store.close();
  }

  // ---- writes ----------------------------------------------------------------------------

  register(
    input: ParsedRegistration,
    defaults: { source?: RegistrationSource; managedBy?: string } = {},
  ): Promise<{ index: number; instance: InstanceDto; changed: boolean }> {
    return this.#writer.register(input, defaults);
  }

  deregister(id: string): Promise<{ index: number; deleted: boolean }> {
    return this.#writer.deregister(id);
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
    return this.#heartbeat(id, this.#view.get(id), status, output, checkId);
  }

  /**
   * A heartbeat for one TTL check of this agent's node (Consul's pass/warn/fail on a node-level
   * check). Throws not-found when the node has no checks.
   */
  async heartbeatNodeCheck(checkId: string, status: CheckStatus, output: string): Promise<void> {
    const id = nodeChecksId(this.nodeName);
    await this.#heartbeat(id, this.#view.nodeChecksInstance(), status, output, checkId);
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
    const s = this.#view.status(id);
    return { index: this.#view.index, status: s?.status ?? 'critical' };
  }

  updateNodeChecks(
    edit: (checks: readonly CheckDefinition[]) => readonly CheckDefinition[],
  ): Promise<{ index: number }> {
    return this.#writer.updateNodeChecks(edit);
  }

  updateChecks(
    id: string,
    edit: (checks: readonly CheckDefinition[]) => readonly CheckDefinition[],
  ): Promise<{ index: number; instance: InstanceDto }> {
    return this.#writer.updateChecks(id, edit);
  }

  setMaintenance(
    id: string,
    enabled: boolean,
    reason: string,
  ): Promise<{ index: number; instance: InstanceDto }> {
    return this.#writer.setMaintenance(id, enabled, reason);
  }

  setAgentMaintenance(enabled: boolean, reason: string): Promise<{ index: number }> {
    return this.#writer.setAgentMaintenance(enabled, reason);
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
    return this.#writer.serial(this.#applyIds(set, inputs), () =>
      this.#applier.apply(set, inputs, source),
    );
  }

  /**
   * The instances an apply of `set` may write: those listed and those the set owns now. The
   * apply takes its place in their write queues (InstanceWriter.serial), as a txn does.
   */
  #applyIds(set: string, inputs: readonly ParsedRegistration[]): string[] {
    const ids = inputs.flatMap((i) => (i.id === undefined ? [] : [i.id]));
    for (const i of this.#view.instancesWhere((x) => x.managedBy === set)) ids.push(i.id);
    return ids;
  }

  /**
   * Puts mesh resources (and the instance sets declared with them) all or nothing: the resulting
   * set's references are checked first, then one commit. Refused with a validation error naming
   * `Kind/namespace/name: <path>` (every problem in `details.problems`); nothing is stored then.
   */
  applyMesh(request: MeshApplyRequest): Promise<MeshApplyResult> {
    const { instances } = request;
    if (instances === undefined || request.dryRun === true)
      return this.#meshWriter.applyMesh(request);
    return this.#writer.serial(this.#applyIds(instances.set, instances.inputs), () =>
      this.#meshWriter.applyMesh(request),
    );
  }

  /** Deletes one resource; refused (validation, naming the referrer's path) while it is used. */
  deleteMeshResource(key: MeshResourceKey): Promise<{ index: number; deleted: boolean }> {
    return this.#meshWriter.deleteMeshResource(key);
  }

  // ---- mesh reads and the change feed ----------------------------------------------------

  get meshIndex(): number {
    return this.#view.mesh.index;
  }

  meshResources(kind?: MeshKind): readonly StoredMeshResource[] {
    return this.#view.mesh.list(kind);
  }

  meshResource(key: MeshResourceKey): StoredMeshResource | undefined {
    return this.#view.mesh.get(key);
  }

  /**
   * Calls `listener` synchronously after each change the view applied that touched services or
   * mesh resources (KV-only changes are not told), once per change, in index order.
   */
  onCatalogChange(listener: (change: CatalogChange) => void): () => void {
    return this.#publisher.onCatalogChange(listener);
  }

  // ---- reads (the view's own arrays and objects, not copies: reads are the hot path) -----

  get catalogIndex(): number {
    return this.#view.catalogIndex;
  }

  get kvIndex(): number {
    return this.#view.kvIndex;
  }

  get instanceCount(): number {
    return this.#view.instanceCount;
  }

  get agentMaintenance(): Maintenance | undefined {
    return this.#view.agentMaintenance;
  }

  serviceIndex(service: string): number {
    return this.#view.serviceIndex(service);
  }

  instance(id: string): InstanceDto | undefined {
    return this.#view.dto(id);
  }

  instanceDefinition(id: string): Instance | undefined {
    return this.#view.get(id);
  }

  serviceInstances(service: string): InstanceDto[] {
    return this.#view.serviceInstances(service);
  }

  allInstances(): InstanceDto[] {
    return this.#view.allInstances();
  }

  instancesWhere(pred: (i: Instance) => boolean): Instance[] {
    return this.#view.instancesWhere(pred);
  }

  nodeChecks(): NodeChecksDto | undefined {
    return this.#view.nodeChecks();
  }

  unwrittenCheckStates(id: string): ReadonlyMap<string, CheckState> {
    return this.#health.unwrittenStates(id);
  }

  unwrittenNodeCheckStates(): ReadonlyMap<string, CheckState> {
    return this.#health.unwrittenStates(nodeChecksId(this.nodeName));
  }

  getInstance(id: string): { index: number; instance: InstanceDto } {
    const dto = this.#view.dto(id);
    if (dto === undefined) throw errors.instanceNotFound(id);
    return { index: dto.modifyIndex, instance: dto };
  }

  /** A service's instances, filtered, and the service's modify index. */
  listInstances(service: string, filter: InstanceFilter = {}): ServiceInstances {
    const all = this.#view.serviceInstances(service);
    return { index: this.#view.serviceIndex(service), instances: filterInstances(all, filter) };
  }

  /** Every service with counts by status and its tags. */
  listServices(): { index: number; services: ServiceSummaryDto[] } {
    const services = this.#view.serviceNames().map((name) => ({
      name,
      ...this.#view.serviceSummary(name),
      modifyIndex: this.#view.serviceIndex(name),
    }));
    return { index: this.#view.catalogIndex, services };
  }

  // ---- watches ---------------------------------------------------------------------------

  /**
   * A blocking query: resolves when `currentIndex()` passes `minIndex`, or after `waitMs` plus a
   * small jitter (wait/16, as Consul does, so many watchers do not return in lockstep).
   */
  waitForChange(
    topic: Topic,
    minIndex: number,
    waitMs: number,
    currentIndex: () => number,
    cancellation?: WaitCancellation,
  ): Promise<void> {
    return this.#publisher.waitForChange(topic, minIndex, waitMs, currentIndex, cancellation);
  }

  /** Subscribes a stream sink to a service (or the whole catalog); sends the snapshot first. */
  subscribeStream(service: string | undefined, sink: StreamSink): () => void {
    return this.#publisher.subscribeStream(service, sink);
  }

  /**
   * Resolves once the change at `index` has been sent to the watchers of `service`, with how many
   * were sent it: its streams (per-service and catalog-wide) and the blocking queries woken. A
   * draining instance uses it to know its consumers have heard of its deregistration.
   */
  notified(service: string, index: number): Promise<WatchersNotified> {
    return this.#publisher.notified(service, index);
  }

  // ---- KV --------------------------------------------------------------------------------

  kvGet(key: string): KvEntry | undefined {
    return this.#kv.kvGet(key);
  }

  kvList(prefix: string): KvEntry[] {
    return this.#kv.kvList(prefix);
  }

  /**
   * Puts a KV value. Throws KV_VALUE_TOO_LARGE past LIMITS.maxKvValueBytes, and KV_QUOTA_EXCEEDED
   * when the KV store would grow past `limits.kvQuotaBytes` (a put that does not grow it, such as
   * a smaller value, always goes through).
   */
  kvPut(
    key: string,
    value: Uint8Array,
    options: { flags?: number; cas?: number } = {},
  ): Promise<{ ok: boolean; index: number }> {
    return this.#kv.kvPut(key, value, options);
  }

  kvDelete(
    key: string,
    options: { recursive?: boolean; cas?: number } = {},
  ): Promise<{ ok: boolean; index: number }> {
    return this.#kv.kvDelete(key, options);
  }

  // ---- sessions and locks (Consul's) ----------------------------------------------------

  /** The index of the last session created or ended (never 0). */
  get sessionIndex(): number {
    return this.#view.sessionIndex;
  }

  session(id: string): StoredSession | undefined {
    return this.#sessions.get(id);
  }

  /** Every session, by id. */
  sessions(): StoredSession[] {
    return this.#sessions.list();
  }

  createSession(input: SessionInput): Promise<{ session: StoredSession; index: number }> {
    return this.#sessions.create(input);
  }

  destroySession(id: string): Promise<{ index: number }> {
    return this.#sessions.destroy(id);
  }

  renewSession(id: string): Promise<StoredSession> {
    return this.#sessions.renew(id);
  }

  kvAcquire(
    key: string,
    value: Uint8Array,
    session: string,
    flags?: number,
  ): Promise<{ ok: boolean; index: number }> {
    return this.#sessions.acquire(key, value, session, flags);
  }

  kvRelease(
    key: string,
    value: Uint8Array,
    session: string,
    flags?: number,
  ): Promise<{ ok: boolean; index: number }> {
    return this.#sessions.release(key, value, session, flags);
  }

  /**
   * Runs KV and instance ops all or nothing, in one commit (Consul's /v1/txn); a txn of reads
   * only is answered from the view.
   */
  txn(ops: readonly TxnOp[]): Promise<TxnOutcome> {
    return this.#txn.run(ops);
  }

  // ---- operations (the agent's metrics) --------------------------------------------------

  /** Instances by status (node checks not counted). */
  countsByStatus(): Record<InstanceStatus, number> {
    return this.#view.countsByStatus();
  }

  /** Bytes of KV keys and values stored. */
  get kvBytes(): number {
    return this.#view.kvBytes;
  }

  /** Blocking queries and streams right now, and streams dropped since start. */
  watchers(): WatcherCounts {
    return this.#publisher.watchers();
  }

  // ---- internals -------------------------------------------------------------------------

  /** Starts or stops checks after the live members changed (cluster mode). */
  #reconcileOwnership(): void {
    const gained = this.#health.reconcileOwnership();
    for (const id of gained) {
      const instance = this.#view.get(id);
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

  #onEvents(events: readonly StoreEvent[]): void {
    let outcome: ApplyOutcome;
    try {
      this.#sessions.beforeEvents(events);
      outcome = this.#view.apply(events);
    } catch (err) {
      this.#log.error({ err }, 'failed to apply store events');
      return;
    }
    // A put's bytes are in the view now: its reservation ends.
    this.#kv.onEvents(events);
    this.#reservedKv.onEvents(events);
    for (const instance of outcome.put)
      this.#health.track(instance, this.#view.states(instance.id));
    for (const id of outcome.deleted) this.#health.untrack(id);
    if (this.#shared) {
      // Another agent may have written a state (a heartbeat it took): judge the next result
      // against it.
      for (const e of events) if (e.type === 'check-state') this.#health.adopt(e.state);
    }
    this.#sessions.afterEvents(events);
    // Watchers hear of the change on the next turn, after the writer's answer has gone out.
    this.#publisher.enqueue(outcome);
  }
}

function isTtl(c: { readonly kind: string }): boolean {
  return c.kind === 'ttl';
}

export function createRegistry(options: RegistryOptions): Registry {
  return new Registry(options);
}
