/**
 * @module CatalogView: the in-memory, read-optimised copy of the catalog, fed only by store
 * events. Keeps per-service modify indexes, aggregated statuses and ready-made DTOs.
 */
import type { CheckState, Instance, InstanceStatus, KvEntry, Maintenance } from '../core/types.js';
import type { CheckDto, InstanceDto } from '../protocol/api-types.js';
import type { StoreEvent, StoreSnapshot } from './store/catalog-store.js';
import { aggregateStatus } from './health/aggregate.js';

/** Reserved KV prefix for agent state (NUL-prefixed: user keys cannot contain control chars). */
export const AGENT_MAINTENANCE_PREFIX = '\u0000agent-maintenance/';

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
}

export interface ApplyOutcome {
  readonly changes: readonly ViewChange[];
  readonly kvChanged: boolean;
  /** Instances put (new or changed definition), for the health manager. */
  readonly put: readonly Instance[];
  /** Instance ids deleted. */
  readonly deleted: readonly string[];
}

export class CatalogView {
  /** Highest index applied. */
  index = 1;
  /** Highest index that changed an instance or a status. */
  catalogIndex = 1;
  /** Highest index that changed KV. */
  kvIndex = 1;
  readonly #instances = new Map<string, Entry>();
  readonly #services = new Map<string, ServiceEntry>();
  readonly #kv = new Map<string, KvEntry>();
  #agentMaintenance: Maintenance | undefined;
  readonly #nodeName: string;

  constructor(nodeName: string) {
    this.#nodeName = nodeName;
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
    for (const kv of snapshot.kv) this.#putKv(kv);
    for (const s of snapshot.instances) {
      this.#putInstance(s.instance, s.createIndex, s.modifyIndex);
    }
    for (const st of snapshot.checkStates) {
      const e = this.#instances.get(st.instanceId);
      if (e !== undefined) e.states = withState(e.states, st);
    }
    for (const e of this.#instances.values()) this.#recompute(e);
    // Check-state changes carry no per-service index in a snapshot; the snapshot index bounds them.
    for (const svc of this.#services.values()) svc.modifyIndex = snapshot.index;
  }

  /** Applies store events; returns what changed. */
  apply(events: readonly StoreEvent[]): ApplyOutcome {
    const changes: ViewChange[] = [];
    const put: Instance[] = [];
    const deleted: string[] = [];
    let kvChanged = false;
    let maintenanceChanged = false;
    for (const ev of events) {
      if (ev.index > this.index) this.index = ev.index;
      switch (ev.type) {
        case 'instance-put': {
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
          const e = this.#instances.get(ev.id);
          if (e === undefined) break;
          this.#instances.delete(ev.id);
          const svc = this.#services.get(e.instance.service);
          if (svc !== undefined) {
            svc.ids.delete(ev.id);
            svc.modifyIndex = ev.index;
          }
          this.catalogIndex = ev.index;
          changes.push({ kind: 'delete', service: e.instance.service, id: ev.id, index: ev.index });
          deleted.push(ev.id);
          break;
        }
        case 'check-state': {
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
          else {
            this.kvIndex = ev.index;
            kvChanged = true;
          }
          break;
        case 'kv-delete':
          this.#kv.delete(ev.key);
          if (ev.key.startsWith(AGENT_MAINTENANCE_PREFIX)) maintenanceChanged = true;
          else {
            this.kvIndex = ev.index;
            kvChanged = true;
          }
          break;
      }
    }
    if (maintenanceChanged) {
      const last = events[events.length - 1];
      const index = last?.index ?? this.index;
      this.#loadAgentMaintenance();
      for (const e of this.#instances.values()) {
        e.modifyIndex = index;
        this.#recompute(e);
        changes.push({ kind: 'upsert', service: e.instance.service, id: e.instance.id, index });
      }
      for (const svc of this.#services.values()) svc.modifyIndex = index;
      this.catalogIndex = index;
    }
    return { changes, kvChanged, put, deleted };
  }

  get(id: string): Instance | undefined {
    return this.#instances.get(id)?.instance;
  }

  states(id: string): CheckState[] {
    return [...(this.#instances.get(id)?.states ?? [])];
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
    return key.startsWith(AGENT_MAINTENANCE_PREFIX) ? undefined : this.#kv.get(key);
  }

  /** KV entries whose key starts with `prefix`, sorted by key. */
  kvList(prefix: string): KvEntry[] {
    const out: KvEntry[] = [];
    for (const [k, v] of this.#kv) {
      if (k.startsWith(prefix) && !k.startsWith(AGENT_MAINTENANCE_PREFIX)) out.push(v);
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
    // States of checks the new definition no longer has are dropped.
    const kept = (prev?.states ?? NO_STATES).filter((st) =>
      instance.checks.some((c) => c.id === st.checkId),
    );
    const states =
      kept.length === prev?.states.length ? prev.states : kept.length === 0 ? NO_STATES : [...kept];
    this.#instances.set(instance.id, {
      instance,
      createIndex,
      modifyIndex,
      states,
      status: 'passing',
      reason: '',
    });
    let svc = this.#services.get(instance.service);
    if (svc === undefined) {
      svc = { ids: new Set(), modifyIndex };
      this.#services.set(instance.service, svc);
    }
    svc.ids.add(instance.id);
    svc.modifyIndex = modifyIndex;
  }

  #putKv(entry: KvEntry): void {
    this.#kv.set(entry.key, entry);
    if (entry.key === AGENT_MAINTENANCE_PREFIX + this.#nodeName) this.#loadAgentMaintenance();
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
    const agg = aggregateStatus(e.instance, e.states, this.#agentMaintenance);
    e.status = agg.status;
    e.reason = agg.reason;
  }

  /**
   * Built on demand, not kept: readers are served from serialised lists cached per service
   * index, and a DTO kept per instance would double the catalog's memory.
   */
  #dto(e: Entry): InstanceDto {
    const i = e.instance;
    const checks: CheckDto[] = i.checks.map((c) => {
      const s = e.states.find((st) => st.checkId === c.id);
      return {
        ...c,
        status: s?.status ?? c.initialStatus,
        output: s?.output ?? 'awaiting first result',
        since: s?.since ?? i.updatedAt,
      };
    });
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
