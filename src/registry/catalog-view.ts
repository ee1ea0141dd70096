/**
 * @module CatalogView: the in-memory, read-optimised copy of the catalog, fed only by store
 * events. Keeps per-service modify indexes, aggregated statuses and ready-made DTOs.
 */
import type {
  CheckState,
  Instance,
  InstanceStatus,
  KvEntry,
  Maintenance,
  Session,
} from '../core/types.js';
import type { CheckDto, InstanceDto } from '../protocol/api-types.js';
import type { MeshResourceKey } from '../protocol/mesh/resource.js';
import type { NodeChecksDto } from './catalog-facade.js';
import type { StoreEvent, StoredSession, StoreSnapshot } from './store/catalog-store.js';
import { aggregateStatus, withNodeStatus, type AggregatedStatus } from './health/aggregate.js';
import { MeshView } from './mesh-view.js';
import { RESERVED_KV_PREFIX } from './reserved-kv-contract.js';

/**
 * Reserved KV prefix for agent state (NUL-prefixed: user keys cannot contain control chars).
 * KV keys starting with NUL are the agent's own (agent maintenance, the mesh CA's state):
 * stored and replicated like any key, but no KV read answers them (kvGet, kvList: every API's
 * reads, watches and recursive deletes go through these), they move no KV index, and no client
 * can write one (KV writes refuse control characters in keys).
 */
export { RESERVED_KV_PREFIX };
export const AGENT_MAINTENANCE_PREFIX = `${RESERVED_KV_PREFIX}agent-maintenance/`;
/** Each agent's share of the call graph in cluster mode (control-plane/graph/graph-share.ts). */
export const CALL_GRAPH_SHARE_PREFIX = `${RESERVED_KV_PREFIX}call-graph/`;

/**
 * A node's own checks (Consul node-level checks) are stored as one reserved instance per node,
 * so every store persists them and the health manager runs them like any other checks. Its id
 * cannot clash with a registration: instance ids start with a letter or a digit.
 */
export const NODE_CHECKS_PREFIX = '_node:';
/** The service name of the reserved instances (not a valid service name either). */
export const NODE_CHECKS_SERVICE = '_node';

/** The id of the reserved instance that holds `nodeName`'s checks. */
export function nodeChecksId(nodeName: string): string {
  return NODE_CHECKS_PREFIX + nodeName;
}

export function isNodeChecksId(id: string): boolean {
  return id.startsWith(NODE_CHECKS_PREFIX);
}

export interface CatalogViewOptions {
  /**
   * Whether this node's checks change the status of every instance (the embedded stores: every
   * instance is on this agent's node). False in cluster mode, where instances belong to no node;
   * the checks then only show (and wake watchers) in this agent's Consul answers. Default true.
   */
  readonly nodeChecksAffectInstances?: boolean;
}

interface Entry {
  instance: Instance;
  createIndex: number;
  modifyIndex: number;
  /** Persisted check states (an array: few per instance, many instances). Never mutated. */
  states: readonly CheckState[];
  status: InstanceStatus;
  reason: string;
}

const NO_STATES: readonly CheckState[] = Object.freeze([]);

/**
 * The states with `state` replacing the same check's, or added. Arrays are copied at their exact
 * size (push() on an empty array reserves 17 slots; with 100k instances that adds up).
 */
function withState(states: readonly CheckState[], state: CheckState): readonly CheckState[] {
  const i = states.findIndex((s) => s.checkId === state.checkId);
  if (i < 0) return [...states, state];
  const next = states.slice();
  next[i] = state;
  return next;
}

interface ServiceEntry {
  readonly ids: Set<string>;
  modifyIndex: number;
}

/** What a batch of events changed, for watchers. */
export interface ViewChange {
  readonly kind: 'upsert' | 'delete';
  readonly service: string;
  readonly id: string;
  readonly index: number;
  /** A deletion: the instance's DTO as it was, made on call (InstanceChange.lastKnown). */
  readonly lastKnown?: () => InstanceDto;
}

export interface ApplyOutcome {
  readonly changes: readonly ViewChange[];
  readonly kvChanged: boolean;
  /** A reserved key (the agent's own state) was put or deleted: topic `reserved`. */
  readonly reservedChanged: boolean;
  /** Instances put (new or changed definition), for the health manager. */
  readonly put: readonly Instance[];
  /** Instance ids deleted. */
  readonly deleted: readonly string[];
  /**
   * This agent's node changed (its checks or its maintenance): every service's Consul health
   * answer changed, and every service index moved.
   */
  readonly nodeChanged: boolean;
  /** Mesh resources put or deleted, in event order. */
  readonly mesh: readonly MeshResourceKey[];
  /** A session was created or ended. */
  readonly sessionsChanged: boolean;
}

export class CatalogView {
  /** Highest index applied. */
  index = 1;
  /** Highest index that changed an instance or a status. */
  catalogIndex = 1;
  /** Highest index that changed KV. */
  kvIndex = 1;
  /** Highest index that created or ended a session. */
  sessionIndex = 1;
  /**
   * Bytes of every client KV key (UTF-8) and value held: what the KV quota counts. The agent's
   * own reserved entries (RESERVED_KV_PREFIX: maintenance flags, the mesh CA's roots) are not
   * the clients' to spend and are left out. Follows the store's snapshot and events, so it is
   * right after a restart and, in cluster mode, counts the other agents' writes once their
   * events arrive.
   */
  kvBytes = 0;
  /** The mesh resources (their own index, the `mesh` topic's). */
  readonly mesh = new MeshView();
  readonly #instances = new Map<string, Entry>();
  readonly #services = new Map<string, ServiceEntry>();
  readonly #kv = new Map<string, KvEntry>();
  readonly #sessions = new Map<string, StoredSession>();
  /** The reserved keys of #kv too, so listing them never scans the clients' KV. */
  readonly #reservedKeys = new Set<string>();
  #agentMaintenance: Maintenance | undefined;
  readonly #nodeName: string;
  /** Reserved node-check instances by id (this node's and, in cluster mode, other agents'). */
  readonly #nodes = new Map<string, Entry>();
  /** The aggregate of this node's checks, when they apply to instances and there are some. */
  #nodeStatus: AggregatedStatus | undefined;
  readonly #nodeChecksAffectInstances: boolean;

  constructor(nodeName: string, options: CatalogViewOptions = {}) {
    this.#nodeName = nodeName;
    this.#nodeChecksAffectInstances = options.nodeChecksAffectInstances ?? true;
  }

  get agentMaintenance(): Maintenance | undefined {
    return this.#agentMaintenance;
  }

  get instanceCount(): number {
    return this.#instances.size;
  }

  load(snapshot: StoreSnapshot): void {
    this.index = snapshot.index;
    this.catalogIndex = snapshot.index;
    this.kvIndex = snapshot.index;
    this.sessionIndex = snapshot.index;
    for (const s of snapshot.sessions) this.#sessions.set(s.session.id, s);
    this.mesh.load(snapshot.meshResources, snapshot.index);
    for (const kv of snapshot.kv) this.#putKv(kv);
    for (const s of snapshot.instances) {
      if (isNodeChecksId(s.instance.id)) this.#putNode(s.instance, s.createIndex, s.modifyIndex);
      else this.#putInstance(s.instance, s.createIndex, s.modifyIndex);
    }
    for (const st of snapshot.checkStates) {
      const e = this.#instances.get(st.instanceId) ?? this.#nodes.get(st.instanceId);
      if (e !== undefined) e.states = withState(e.states, st);
    }
    this.#loadNodeStatus();
    for (const e of this.#instances.values()) this.#recompute(e);
    // Check-state changes carry no per-service index in a snapshot; the snapshot index bounds them.
    for (const svc of this.#services.values()) svc.modifyIndex = snapshot.index;
  }

  /** Applies store events; returns what changed. */
  apply(events: readonly StoreEvent[]): ApplyOutcome {
    const changes: ViewChange[] = [];
    const put: Instance[] = [];
    const deleted: string[] = [];
    const mesh: MeshResourceKey[] = [];
    let kvChanged = false;
    let sessionsChanged = false;
    let reservedChanged = false;
    let maintenanceChanged = false;
    let nodeChecksChanged = false;
    const ownNode = nodeChecksId(this.#nodeName);
    for (const ev of events) {
      if (ev.index > this.index) this.index = ev.index;
      switch (ev.type) {
        case 'instance-put': {
          if (isNodeChecksId(ev.instance.id)) {
            this.#putNode(ev.instance, ev.createIndex, ev.index);
            nodeChecksChanged ||= ev.instance.id === ownNode;
            put.push(ev.instance);
            break;
          }
          this.#putInstance(ev.instance, ev.createIndex, ev.index);
          const e = this.#instances.get(ev.instance.id);
          if (e !== undefined) this.#recompute(e);
          this.catalogIndex = ev.index;
          changes.push({
            kind: 'upsert',
            service: ev.instance.service,
            id: ev.instance.id,
            index: ev.index,
          });
          put.push(ev.instance);
          break;
        }
        case 'instance-delete': {
          if (this.#nodes.delete(ev.id)) {
            nodeChecksChanged ||= ev.id === ownNode;
            deleted.push(ev.id);
            break;
          }
          const e = this.#instances.get(ev.id);
          if (e === undefined) break;
          this.#instances.delete(ev.id);
          const svc = this.#services.get(e.instance.service);
          if (svc !== undefined) {
            svc.ids.delete(ev.id);
            svc.modifyIndex = ev.index;
          }
          this.catalogIndex = ev.index;
          changes.push({
            kind: 'delete',
            service: e.instance.service,
            id: ev.id,
            index: ev.index,
            lastKnown: () => this.#dto(e),
          });
          deleted.push(ev.id);
          break;
        }
        case 'check-state': {
          const n = this.#nodes.get(ev.state.instanceId);
          if (n !== undefined) {
            n.states = withState(n.states, ev.state);
            n.modifyIndex = ev.index;
            nodeChecksChanged ||= ev.state.instanceId === ownNode;
            break;
          }
          const e = this.#instances.get(ev.state.instanceId);
          if (e === undefined) break;
          e.states = withState(e.states, ev.state);
          e.modifyIndex = ev.index;
          this.#recompute(e);
          const svc = this.#services.get(e.instance.service);
          if (svc !== undefined) svc.modifyIndex = ev.index;
          this.catalogIndex = ev.index;
          changes.push({
            kind: 'upsert',
            service: e.instance.service,
            id: e.instance.id,
            index: ev.index,
          });
          break;
        }
        case 'kv-put':
          this.#putKv(ev.entry);
          if (ev.entry.key.startsWith(AGENT_MAINTENANCE_PREFIX)) maintenanceChanged = true;
          if (ev.entry.key.startsWith(RESERVED_KV_PREFIX)) reservedChanged = true;
          else {
            this.kvIndex = ev.index;
            kvChanged = true;
          }
          break;
        case 'kv-delete':
          this.#deleteKv(ev.key);
          if (ev.key.startsWith(AGENT_MAINTENANCE_PREFIX)) maintenanceChanged = true;
          if (ev.key.startsWith(RESERVED_KV_PREFIX)) reservedChanged = true;
          else {
            this.kvIndex = ev.index;
            kvChanged = true;
          }
          break;
        case 'mesh-put':
          mesh.push(this.mesh.put(ev.resource, ev.createIndex, ev.index));
          break;
        case 'mesh-delete':
          if (this.mesh.delete(ev.key, ev.index)) mesh.push(ev.key);
          break;
        case 'session-put':
          this.#sessions.set(ev.session.id, { session: ev.session, createIndex: ev.createIndex });
          this.sessionIndex = ev.index;
          sessionsChanged = true;
          break;
        case 'session-delete':
          if (this.#sessions.delete(ev.id)) {
            this.sessionIndex = ev.index;
            sessionsChanged = true;
          }
          break;
      }
    }
    const nodeChanged = maintenanceChanged || nodeChecksChanged;
    if (nodeChanged) {
      const last = events[events.length - 1];
      const index = last?.index ?? this.index;
      if (maintenanceChanged) this.#loadAgentMaintenance();
      if (nodeChecksChanged) this.#loadNodeStatus();
      // Maintenance always changes statuses; node checks only where they apply to instances
      // (elsewhere they still change every service's Consul health answer: indexes move).
      if (maintenanceChanged || this.#nodeChecksAffectInstances) {
        for (const e of this.#instances.values()) {
          e.modifyIndex = index;
          this.#recompute(e);
          changes.push({ kind: 'upsert', service: e.instance.service, id: e.instance.id, index });
        }
      }
      for (const svc of this.#services.values()) svc.modifyIndex = index;
      this.catalogIndex = index;
    }
    return {
      changes,
      kvChanged,
      reservedChanged,
      put,
      deleted,
      nodeChanged,
      mesh,
      sessionsChanged,
    };
  }

  /** One session, or undefined. */
  session(id: string): StoredSession | undefined {
    return this.#sessions.get(id);
  }

  /** Every session, by id. */
  sessions(): StoredSession[] {
    return [...this.#sessions.values()].sort((a, b) =>
      a.session.id < b.session.id ? -1 : a.session.id > b.session.id ? 1 : 0,
    );
  }

  /** The keys `sessionId` holds (a scan of KV: sessions end rarely). */
  heldBy(sessionId: string): KvEntry[] {
    const out: KvEntry[] = [];
    for (const e of this.#kv.values()) if (e.session === sessionId) out.push(e);
    return out;
  }

  /** Sessions bound to at least one stored check. */
  sessionsBound(): Session[] {
    const out: Session[] = [];
    for (const s of this.#sessions.values()) if (s.session.checks.length > 0) out.push(s.session);
    return out;
  }

  /** This node's checks, or undefined when it has none. */
  nodeChecks(): NodeChecksDto | undefined {
    const e = this.#nodes.get(nodeChecksId(this.#nodeName));
    if (e === undefined) return undefined;
    return { checks: checkDtos(e), createIndex: e.createIndex, modifyIndex: e.modifyIndex };
  }

  /** The reserved instance holding this node's checks, as stored. */
  nodeChecksInstance(): Instance | undefined {
    return this.#nodes.get(nodeChecksId(this.#nodeName))?.instance;
  }

  get(id: string): Instance | undefined {
    return this.#instances.get(id)?.instance;
  }

  /** The definition of an instance or of a reserved node-check instance (any node's). */
  definition(id: string): Instance | undefined {
    return this.#instances.get(id)?.instance ?? this.#nodes.get(id)?.instance;
  }

  /** Persisted check states of an instance (or of a reserved node-check instance). */
  states(id: string): CheckState[] {
    return [...(this.#instances.get(id)?.states ?? this.#nodes.get(id)?.states ?? [])];
  }

  status(id: string): { status: InstanceStatus; reason: string } | undefined {
    const e = this.#instances.get(id);
    return e === undefined ? undefined : { status: e.status, reason: e.reason };
  }

  dto(id: string): InstanceDto | undefined {
    const e = this.#instances.get(id);
    return e === undefined ? undefined : this.#dto(e);
  }

  /** Modify index of a service (the index of its last change; the catalog index if unknown). */
  serviceIndex(service: string): number {
    return this.#services.get(service)?.modifyIndex ?? this.catalogIndex;
  }

  hasService(service: string): boolean {
    return (this.#services.get(service)?.ids.size ?? 0) > 0;
  }

  /** DTOs of a service's instances, sorted by id. */
  serviceInstances(service: string): InstanceDto[] {
    const svc = this.#services.get(service);
    if (svc === undefined) return [];
    const out: InstanceDto[] = [];
    for (const id of svc.ids) {
      const e = this.#instances.get(id);
      if (e !== undefined) out.push(this.#dto(e));
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Every instance DTO. */
  allInstances(): InstanceDto[] {
    const out: InstanceDto[] = [];
    for (const name of [...this.#services.keys()].sort()) out.push(...this.serviceInstances(name));
    return out;
  }

  serviceNames(): string[] {
    const out: string[] = [];
    for (const [name, s] of this.#services) if (s.ids.size > 0) out.push(name);
    return out.sort();
  }

  instancesWhere(pred: (i: Instance) => boolean): Instance[] {
    const out: Instance[] = [];
    for (const e of this.#instances.values()) if (pred(e.instance)) out.push(e.instance);
    return out;
  }

  kvGet(key: string): KvEntry | undefined {
    return key.startsWith(RESERVED_KV_PREFIX) ? undefined : this.#kv.get(key);
  }

  /** A reserved key's entry (RESERVED_KV_PREFIX): for the agent's own parts, never a KV API. */
  reservedKvGet(key: string): KvEntry | undefined {
    return key.startsWith(RESERVED_KV_PREFIX) ? this.#kv.get(key) : undefined;
  }

  /** Reserved entries under `prefix` (a reserved prefix), sorted by key. */
  reservedKvList(prefix: string): KvEntry[] {
    if (!prefix.startsWith(RESERVED_KV_PREFIX)) return [];
    const out: KvEntry[] = [];
    for (const k of this.#reservedKeys) {
      const v = k.startsWith(prefix) ? this.#kv.get(k) : undefined;
      if (v !== undefined) out.push(v);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** KV entries whose key starts with `prefix`, sorted by key. */
  kvList(prefix: string): KvEntry[] {
    const out: KvEntry[] = [];
    for (const [k, v] of this.#kv) {
      if (k.startsWith(prefix) && !k.startsWith(RESERVED_KV_PREFIX)) out.push(v);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  countsByStatus(): Record<InstanceStatus, number> {
    const counts: Record<InstanceStatus, number> = {
      passing: 0,
      warning: 0,
      critical: 0,
      maintenance: 0,
      starting: 0,
    };
    for (const e of this.#instances.values()) counts[e.status]++;
    return counts;
  }

  /** Counts by status and the union of tags of one service. */
  serviceSummary(service: string): {
    byStatus: Record<InstanceStatus, number>;
    tags: string[];
    instances: number;
  } {
    const byStatus: Record<InstanceStatus, number> = {
      passing: 0,
      warning: 0,
      critical: 0,
      maintenance: 0,
      starting: 0,
    };
    const tags = new Set<string>();
    const svc = this.#services.get(service);
    for (const id of svc?.ids ?? []) {
      const e = this.#instances.get(id);
      if (e === undefined) continue;
      byStatus[e.status]++;
      for (const t of e.instance.tags) tags.add(t);
    }
    return { byStatus, tags: [...tags].sort(), instances: svc?.ids.size ?? 0 };
  }

  #putInstance(instance: Instance, createIndex: number, modifyIndex: number): void {
    const prev = this.#instances.get(instance.id);
    if (prev !== undefined && prev.instance.service !== instance.service) {
      // Only reachable if a store accepted an id move across services; keep the indexes right.
      const old = this.#services.get(prev.instance.service);
      if (old !== undefined) {
        old.ids.delete(instance.id);
        old.modifyIndex = modifyIndex;
      }
    }
    this.#instances.set(instance.id, newEntry(prev, instance, createIndex, modifyIndex));
    let svc = this.#services.get(instance.service);
    if (svc === undefined) {
      svc = { ids: new Set(), modifyIndex };
      this.#services.set(instance.service, svc);
    }
    svc.ids.add(instance.id);
    svc.modifyIndex = modifyIndex;
  }

  /** Stores a reserved node-check instance (it is in no service). */
  #putNode(instance: Instance, createIndex: number, modifyIndex: number): void {
    const prev = this.#nodes.get(instance.id);
    this.#nodes.set(instance.id, newEntry(prev, instance, createIndex, modifyIndex));
  }

  #loadNodeStatus(): void {
    const e = this.#nodes.get(nodeChecksId(this.#nodeName));
    this.#nodeStatus =
      e === undefined || !this.#nodeChecksAffectInstances
        ? undefined
        : aggregateStatus(e.instance, e.states, undefined);
  }

  #putKv(entry: KvEntry): void {
    this.#deleteKv(entry.key);
    this.#kv.set(entry.key, entry);
    if (entry.key.startsWith(RESERVED_KV_PREFIX)) this.#reservedKeys.add(entry.key);
    else this.kvBytes += kvEntryBytes(entry.key, entry.value);
    if (entry.key === AGENT_MAINTENANCE_PREFIX + this.#nodeName) this.#loadAgentMaintenance();
  }

  #deleteKv(key: string): void {
    const prev = this.#kv.get(key);
    if (prev === undefined) return;
    this.#kv.delete(key);
    if (key.startsWith(RESERVED_KV_PREFIX)) this.#reservedKeys.delete(key);
    else this.kvBytes -= kvEntryBytes(key, prev.value);
  }

  #loadAgentMaintenance(): void {
    const e = this.#kv.get(AGENT_MAINTENANCE_PREFIX + this.#nodeName);
    if (e === undefined) {
      this.#agentMaintenance = undefined;
      return;
    }
    const reason = Buffer.from(e.value).toString('utf8');
    this.#agentMaintenance = { enabled: true, reason };
  }

  #recompute(e: Entry): void {
    const agg = withNodeStatus(
      aggregateStatus(e.instance, e.states, this.#agentMaintenance),
      this.#nodeStatus,
    );
    e.status = agg.status;
    e.reason = agg.reason;
  }

  /**
   * Built on demand, not kept: readers are served from serialised lists cached per service
   * index, and a DTO kept per instance would double the catalog's memory.
   */
  #dto(e: Entry): InstanceDto {
    const i = e.instance;
    const checks = checkDtos(e);
    return {
      id: i.id,
      service: i.service,
      address: i.address,
      port: i.port,
      ports: i.ports,
      tags: i.tags,
      meta: i.meta,
      weights: i.weights,
      priority: i.priority,
      capacity: i.capacity,
      protocols: i.protocols,
      source: i.source,
      managedBy: i.managedBy,
      maintenance: i.maintenance,
      status: e.status,
      statusReason: e.reason,
      checks,
      createdAt: i.createdAt,
      updatedAt: i.updatedAt,
      createIndex: e.createIndex,
      modifyIndex: e.modifyIndex,
    };
  }
}

/** The entry of a new definition of `prev`'s instance: states of checks it no longer has are dropped. */
function newEntry(
  prev: Entry | undefined,
  instance: Instance,
  createIndex: number,
  modifyIndex: number,
): Entry {
  const kept = (prev?.states ?? NO_STATES).filter((st) =>
    instance.checks.some((c) => c.id === st.checkId),
  );
  const states =
    kept.length === prev?.states.length ? prev.states : kept.length === 0 ? NO_STATES : [...kept];
  return { instance, createIndex, modifyIndex, states, status: 'passing', reason: '' };
}

/** The checks of an entry with their states (or their initial status before a first result). */
function checkDtos(e: Entry): CheckDto[] {
  return e.instance.checks.map((c) => {
    const s = e.states.find((st) => st.checkId === c.id);
    return {
      ...c,
      status: s?.status ?? c.initialStatus,
      output: s?.output ?? 'awaiting first result',
      since: s?.since ?? e.instance.updatedAt,
    };
  });
}

/** What one KV entry counts against the quota: its key's UTF-8 bytes and its value's bytes. */
export function kvEntryBytes(key: string, value: Uint8Array): number {
  return Buffer.byteLength(key, 'utf8') + value.byteLength;
}
