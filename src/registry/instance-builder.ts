/**
 * @module InstanceBuilder: turns a parsed registration into the stored, immutable `Instance`
 * (normalised checks under the agent's floors, shared frozen defaults, kept maintenance and
 * ownership), and the helpers that compare and create instances.
 */
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Clock } from '../core/clock.js';
import { errors } from '../core/errors.js';
import type { CheckDefinition, Instance, RegistrationSource } from '../core/types.js';
import type { CheckFloors } from '../protocol/limits.js';
import {
  CheckShapeError,
  normalizeChecks,
  type ParsedRegistration,
} from '../protocol/registration.js';
import { NODE_CHECKS_SERVICE, type CatalogView } from './catalog-view.js';

/** What an {@link InstanceBuilder} reads and enforces. */
export interface InstanceBuilderOptions {
  readonly view: CatalogView;
  readonly clock: Clock;
  readonly checkFloors: CheckFloors;
  readonly maxChecksPerInstance: number;
}

/** Builds instances from registrations, against the current view (for what an update keeps). */
export class InstanceBuilder {
  readonly #view: CatalogView;
  readonly #clock: Clock;
  readonly #floors: CheckFloors;
  readonly #maxChecks: number;

  constructor(options: InstanceBuilderOptions) {
    this.#view = options.view;
    this.#clock = options.clock;
    this.#floors = options.checkFloors;
    this.#maxChecks = options.maxChecksPerInstance;
  }

  /**
   * The instance `input` registers. Throws VALIDATION (bad checks, too many) and a 409-coded
   * error when the id belongs to another service.
   */
  build(
    input: ParsedRegistration,
    defaults: { source?: RegistrationSource; managedBy?: string },
  ): Instance {
    let checks;
    try {
      checks = normalizeChecks(input.checks ?? [], this.#floors);
    } catch (err) {
      if (err instanceof CheckShapeError) throw errors.validation(err.field, err.reason);
      throw err;
    }
    this.assertCheckCount(checks, 0);
    const id = instanceIdOf(input);
    const prev = this.#view.get(id);
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
  assertCheckCount(checks: readonly CheckDefinition[], before: number): void {
    const max = this.#maxChecks;
    if (checks.length > max && checks.length > before)
      throw errors.validation('checks', `at most ${max} checks per instance`);
  }
}

// Instances are immutable, so the common empty and default values are shared, frozen objects:
// with 100k instances, one empty object or array each adds up (see docs/benchmarks.md, scale).
const EMPTY_MAP: Readonly<Record<string, never>> = Object.freeze({});
const EMPTY_LIST: readonly string[] = Object.freeze([]);
const DEFAULT_WEIGHTS = Object.freeze({ passing: 1, warning: 1 });
export const NO_MAINTENANCE = Object.freeze({ enabled: false, reason: '' });

/**
 * `value`, or the shared `empty` when it is absent or empty. Arrays are copied at their exact
 * size: parsers build them with push(), which reserves spare slots.
 */
function orShared<T extends object>(value: T | undefined, empty: Readonly<T>): Readonly<T> {
  if (value === undefined) return empty;
  if (Array.isArray(value)) return value.length === 0 ? empty : (value.slice() as T);
  return Object.keys(value).length === 0 ? empty : value;
}

/** The registration's id, or a new one (`<service>-<12 hex digits>`) when it has none. */
export function instanceIdOf(input: ParsedRegistration): string {
  return input.id ?? `${input.service}-${randomBytes(6).toString('hex')}`;
}

/** True when two instances differ only in their update timestamp. */
export function sameDefinition(a: Instance, b: Instance): boolean {
  return isDeepStrictEqual(
    { ...a, updatedAt: 0, createdAt: 0 },
    { ...b, updatedAt: 0, createdAt: 0 },
  );
}

/** A new reserved instance for a node's checks (only its id and checks matter). */
export function nodeChecksInstance(id: string, now: number): Instance {
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
