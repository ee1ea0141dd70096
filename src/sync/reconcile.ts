/**
 * @module Reconciler: the loop between a {@link RuntimeSource} and the agent. It keeps the
 * desired set (what runs now, as the source reports it) and makes the agent's apply set match
 * it with `PUT /api/v1/apply` (source `orchestrator`), one apply at a time; paused workloads go
 * to maintenance. Every workload change is applied at once; every snapshot is a full reconcile.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { ERROR_CODES, isMeshError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { RegistryClient } from '../client/registry-client.js';
import type { RuntimeSource, SourceHandlers, Workload } from './source.js';

/** What the loop is given. */
export interface ReconcilerOptions {
  readonly source: RuntimeSource;
  readonly client: RegistryClient;
  /**
   * The apply set this sync owns (`docker:<node-name>`): only its instances are created, changed
   * or removed, so syncs on other nodes keep theirs.
   */
  readonly set: string;
  readonly logger: Logger;
  readonly metrics: Registry;
  /** Wait before retrying an apply the agent refused or did not answer. */
  readonly retryMs?: number;
}

/** The loop: see the module comment. */
export class Reconciler implements SourceHandlers {
  readonly #o: ReconcilerOptions;
  readonly #log: Logger;
  readonly #desired = new Map<string, Workload>();
  /** Maintenance as last set on the agent, by workload id (cleared by a snapshot). */
  readonly #maintenance = new Map<string, boolean>();
  /** Workloads whose problems were logged already (logged again when they change). */
  readonly #reported = new Map<string, string>();
  #synced = false;
  #dirty = false;
  #applying: Promise<void> | undefined;
  #retry: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #applies: Counter<'result'>;
  readonly #invalid: Counter<'source'>;
  readonly #events: Counter<'kind'>;
  readonly #instances: Gauge;

  constructor(options: ReconcilerOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'sync', set: options.set });
    const registers = [options.metrics];
    this.#applies = new Counter({
      name: 'meshwork_sync_applies_total',
      help: 'Applies of the desired set to the agent, by result (ok, failed)',
      labelNames: ['result'],
      registers,
    });
    this.#invalid = new Counter({
      name: 'meshwork_sync_invalid_workloads_total',
      help: 'Workloads skipped for bad labels (each time one is reported)',
      labelNames: ['source'],
      registers,
    });
    this.#events = new Counter({
      name: 'meshwork_sync_events_total',
      help: 'What the source reported: snapshot, upsert, remove, disconnected',
      labelNames: ['kind'],
      registers,
    });
    this.#instances = new Gauge({
      name: 'meshwork_sync_instances',
      help: 'Instances this sync keeps registered (the last applied desired set)',
      registers,
    });
  }

  /** True once a snapshot was applied, and since the source's last connection. */
  get synced(): boolean {
    return this.#synced;
  }

  /** Starts following the source. */
  start(): void {
    this.#o.source.start(this);
  }

  /** Stops following; the instances stay registered (a restarted sync reconciles them). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    await this.#o.source.stop();
    await this.#applying;
  }

  snapshot(workloads: readonly Workload[]): void {
    this.#events.inc({ kind: 'snapshot' });
    this.#desired.clear();
    this.#maintenance.clear();
    for (const w of workloads) this.#take(w);
    this.#log.info({ workloads: workloads.length }, 'full reconcile');
    this.#schedule(true);
  }

  upsert(workload: Workload): void {
    this.#events.inc({ kind: 'upsert' });
    this.#take(workload);
    this.#schedule(false);
  }

  remove(id: string): void {
    this.#events.inc({ kind: 'remove' });
    if (!this.#desired.delete(id)) return;
    this.#maintenance.delete(id);
    this.#reported.delete(id);
    this.#schedule(false);
  }

  disconnected(err: Error): void {
    this.#events.inc({ kind: 'disconnected' });
    this.#synced = false;
    this.#log.debug({ err: err.message }, 'source disconnected');
  }

  #take(w: Workload): void {
    this.#desired.set(w.id, w);
    if (w.problems.length === 0) {
      this.#reported.delete(w.id);
      return;
    }
    const key = w.problems.join('\n');
    if (this.#reported.get(w.id) === key) return;
    this.#reported.set(w.id, key);
    this.#invalid.inc({ source: this.#o.source.kind });
    this.#log.warn(
      { container: w.name, id: w.id.slice(0, 12), problems: w.problems },
      'workload skipped: bad labels',
    );
  }

  #full = false;

  /** Applies now, or after the apply in flight (`full`: a snapshot's, which marks `synced`). */
  #schedule(full: boolean): void {
    this.#full ||= full;
    this.#dirty = true;
    this.#applying ??= this.#drain().finally(() => (this.#applying = undefined));
  }

  async #drain(): Promise<void> {
    while (this.#dirty && !this.#stopped) {
      this.#dirty = false;
      const full = this.#full;
      this.#full = false;
      const valid = [...this.#desired.values()].filter((w) => w.registration !== undefined);
      try {
        await this.#applyOnce(valid);
        if (full) this.#synced = true;
      } catch (err) {
        const refused = this.#refusedBy(err, valid);
        if (refused !== undefined) {
          // One registration the agent refuses (a duplicate meshwork.id, a value only the agent
          // checks) must not hold back the others: it is skipped and reported like bad labels.
          this.#take({ ...refused, registration: undefined, problems: [(err as Error).message] });
          this.#full ||= full;
          this.#dirty = true;
          continue;
        }
        this.#applies.inc({ result: 'failed' });
        this.#full ||= full;
        this.#log.warn({ err: (err as Error).message }, 'apply to the agent failed; retrying');
        clearTimeout(this.#retry);
        this.#retry = setTimeout(() => this.#schedule(false), this.#o.retryMs ?? 1_000);
        return;
      }
    }
  }

  /** The workload whose registration the agent refused (`instances[i]...`), if that was it. */
  #refusedBy(err: unknown, valid: readonly Workload[]): Workload | undefined {
    if (!isMeshError(err, ERROR_CODES.VALIDATION)) return undefined;
    const m = /^instances\[(\d+)\]/.exec(String(err.details?.field ?? ''));
    return m === null ? undefined : valid[Number(m[1])];
  }

  async #applyOnce(valid: readonly Workload[]): Promise<void> {
    const r = await this.#o.client.apply(
      this.#o.set,
      valid.map((w) => w.registration!),
      'orchestrator',
    );
    this.#applies.inc({ result: 'ok' });
    this.#instances.set(valid.length);
    if (r.created.length + r.updated.length + r.deleted.length > 0)
      this.#log.info(
        { created: r.created, updated: r.updated, deleted: r.deleted, index: r.index },
        'applied',
      );
    for (const w of valid) {
      const id = w.registration!.id!;
      if (this.#maintenance.get(w.id) === w.paused) continue;
      // A new instance starts out of maintenance; a paused one is put in.
      if (!w.paused && r.created.includes(id)) {
        this.#maintenance.set(w.id, false);
        continue;
      }
      await this.#o.client.maintenance(id, w.paused, w.paused ? 'container paused' : undefined);
      this.#maintenance.set(w.id, w.paused);
    }
  }
}
