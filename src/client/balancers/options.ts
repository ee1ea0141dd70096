/** @module Balancer specs: one schema per kind, its defaults, and the resolver createBalancer uses. */
import { z } from 'zod';
import { errors } from '../../core/errors.js';
import { formatPath } from '../../protocol/validation.js';

/** Every balancer name a spec may use, in the order error messages list them. */
export const BALANCER_TYPES = Object.freeze([
  'round-robin',
  'weighted-round-robin',
  'random',
  'least-request',
  'ring-hash',
  'maglev',
  'zone-aware',
] as const);

export type BalancerType = (typeof BALANCER_TYPES)[number];

export const DEFAULT_LEAST_REQUEST_OPTIONS = Object.freeze({ choices: 2 });
/** Envoy's ring_hash defaults. */
export const DEFAULT_RING_HASH_OPTIONS = Object.freeze({
  minRingSize: 1024,
  maxRingSize: 8_388_608,
});
/** The Maglev paper's and Envoy's default: a prime well above 100 x the endpoints of a service. */
export const DEFAULT_MAGLEV_OPTIONS = Object.freeze({ tableSize: 65_537 });
/**
 * minHealthyPercent 70: about where Envoy starts moving load away from a locality or priority
 * (its overprovisioning factor 1.4 keeps all load while 1 / 1.4 = 71% of hosts are healthy).
 * overloadInFlight 100: concurrent requests to one endpoint; set it from the service's limit.
 */
export const DEFAULT_ZONE_AWARE_OPTIONS = Object.freeze({
  inner: 'weighted-round-robin' as const,
  minHealthyPercent: 70,
  overloadInFlight: 100,
});

/** Envoy's largest Maglev table: the build is O(size log size) and holds one int per slot. */
const MAX_MAGLEV_TABLE_SIZE = 5_000_011;
const MAX_RING_SIZE = 8_388_608;

function isPrime(n: number): boolean {
  if (n < 2 || n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

const ringSize = z.number().int().min(1).max(MAX_RING_SIZE);

const SCHEMAS = {
  'round-robin': z.strictObject({ type: z.literal('round-robin') }),
  'weighted-round-robin': z.strictObject({ type: z.literal('weighted-round-robin') }),
  random: z.strictObject({ type: z.literal('random') }),
  'least-request': z.strictObject({
    type: z.literal('least-request'),
    choices: z.number().int().min(2).max(16).default(DEFAULT_LEAST_REQUEST_OPTIONS.choices),
  }),
  'ring-hash': z
    .strictObject({
      type: z.literal('ring-hash'),
      minRingSize: ringSize.default(DEFAULT_RING_HASH_OPTIONS.minRingSize),
      maxRingSize: ringSize.default(DEFAULT_RING_HASH_OPTIONS.maxRingSize),
    })
    .refine((o) => o.minRingSize <= o.maxRingSize, {
      message: 'must not exceed maxRingSize',
      path: ['minRingSize'],
    }),
  maglev: z.strictObject({
    type: z.literal('maglev'),
    tableSize: z
      .number()
      .int()
      .min(3)
      .max(MAX_MAGLEV_TABLE_SIZE)
      .refine(isPrime, 'must be a prime (65537 by default)')
      .default(DEFAULT_MAGLEV_OPTIONS.tableSize),
  }),
  'zone-aware': z.strictObject({
    type: z.literal('zone-aware'),
    localZone: z.string().min(1),
    inner: z.unknown().optional(),
    minHealthyPercent: z
      .number()
      .int()
      .min(0)
      .max(100)
      .default(DEFAULT_ZONE_AWARE_OPTIONS.minHealthyPercent),
    overloadInFlight: z.number().int().min(1).default(DEFAULT_ZONE_AWARE_OPTIONS.overloadInFlight),
  }),
} as const satisfies Record<BalancerType, z.ZodType>;

type Resolved<T extends BalancerType> = z.output<(typeof SCHEMAS)[T]>;

/** A balancer spec after validation, every option defaulted. */
export type ResolvedBalancerSpec =
  | Resolved<'round-robin' | 'weighted-round-robin' | 'random' | 'least-request'>
  | Resolved<'ring-hash' | 'maglev'>
  | (Omit<Resolved<'zone-aware'>, 'inner'> & { readonly inner: ResolvedBalancerSpec });

/**
 * Validates a spec (a name or `{ type, ...options }`) and fills in the defaults. Throws one
 * MeshError (MESHWORK_ERR_CLIENT_BALANCER_INVALID) that lists every problem; an unknown name's
 * problem lists the valid names.
 */
export function resolveBalancerSpec(spec: unknown): ResolvedBalancerSpec {
  const problems: string[] = [];
  const resolved = resolve(spec, 'balancer', problems, true);
  if (resolved === undefined || problems.length > 0) throw errors.balancerInvalid(problems);
  return resolved;
}

function resolve(
  spec: unknown,
  path: string,
  problems: string[],
  outermost: boolean,
): ResolvedBalancerSpec | undefined {
  const object: unknown = typeof spec === 'string' ? { type: spec } : spec;
  const type =
    typeof object === 'object' && object !== null ? (object as { type?: unknown }).type : spec;
  if (!BALANCER_TYPES.includes(type as BalancerType)) {
    problems.push(
      `${path}: unknown balancer ${JSON.stringify(type) ?? String(type)}: use one of ${BALANCER_TYPES.join(', ')}`,
    );
    return undefined;
  }
  if (type === 'zone-aware' && !outermost) {
    problems.push(`${path}: zone-aware cannot be nested in zone-aware`);
    return undefined;
  }
  const parsed = SCHEMAS[type as BalancerType].safeParse(object);
  // A zone-aware spec's inner spec is checked even when the outer one failed: one error lists
  // every problem.
  const inner =
    type === 'zone-aware'
      ? resolve(
          (object as { inner?: unknown }).inner ?? DEFAULT_ZONE_AWARE_OPTIONS.inner,
          `${path}.inner`,
          problems,
          false,
        )
      : undefined;
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`${formatPath(issue.path, path)}: ${issue.message}`);
    }
    return undefined;
  }
  const data = parsed.data;
  if (data.type !== 'zone-aware') return Object.freeze(data);
  return inner === undefined ? undefined : Object.freeze({ ...data, inner });
}
