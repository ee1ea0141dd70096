/** @module The balancer kind's entry point: createBalancer resolves a spec, toEndpoints feeds it. */
import type { InstanceDto } from '../../protocol/api-types.js';
import type { Balancer, BalancerOptions, BalancerSpec, Endpoint } from './balancer.js';
import { LeastRequestBalancer } from './least-request.js';
import { MaglevBalancer } from './maglev.js';
import { resolveBalancerSpec, type ResolvedBalancerSpec } from './options.js';
import { compareIds } from './pick-helpers.js';
import { PriorityBalancer } from './priority-balancer.js';
import { RandomSource } from './random-source.js';
import { RandomBalancer } from './random.js';
import { RingHashBalancer } from './ring-hash.js';
import { RoundRobinBalancer } from './round-robin.js';
import { WeightedRoundRobinBalancer } from './weighted-round-robin.js';
import { ZoneAwareBalancer } from './zone-aware.js';

export type { Balancer, BalancerOptions, BalancerSpec, Endpoint, PickContext } from './balancer.js';
export {
  BALANCER_TYPES,
  DEFAULT_LEAST_REQUEST_OPTIONS,
  DEFAULT_MAGLEV_OPTIONS,
  DEFAULT_RING_HASH_OPTIONS,
  DEFAULT_ZONE_AWARE_OPTIONS,
  resolveBalancerSpec,
} from './options.js';
export type { BalancerType, ResolvedBalancerSpec } from './options.js';

/**
 * Makes a balancer from a spec, validated once here: an unknown name or a bad option throws a
 * MeshError (MESHWORK_ERR_CLIENT_BALANCER_INVALID) listing every problem. The balancer picks
 * only among the best (lowest) priority present, falling back a level when all of it is
 * excluded.
 *
 * @example
 * const balancer = createBalancer({ type: 'ring-hash', minRingSize: 4096 });
 * balancer.update(toEndpoints(instances));
 * const endpoint = balancer.pick({ hashKey: userId });
 */
export function createBalancer(spec: BalancerSpec, options: BalancerOptions = {}): Balancer {
  const resolved = resolveBalancerSpec(spec);
  const random = options.random ?? Math.random;
  return new PriorityBalancer(resolved.type, () => createLevel(resolved, random));
}

/** One priority level's balancer: the algorithm itself, without the priority split. */
function createLevel(spec: ResolvedBalancerSpec, seed: () => number): Balancer {
  const random = new RandomSource(seed);
  switch (spec.type) {
    case 'round-robin':
      return new RoundRobinBalancer(random);
    case 'weighted-round-robin':
      return new WeightedRoundRobinBalancer();
    case 'random':
      return new RandomBalancer(random);
    case 'least-request':
      return new LeastRequestBalancer(spec.choices, random);
    case 'ring-hash':
      return new RingHashBalancer(spec.minRingSize, spec.maxRingSize, random);
    case 'maglev':
      return new MaglevBalancer(spec.tableSize, random);
    case 'zone-aware':
      return new ZoneAwareBalancer(spec, () => createLevel(spec.inner, seed));
  }
}

/**
 * The pickable endpoints of a service's instances: passing and warning ones only (critical,
 * maintenance and starting never), weighted by weights.passing or weights.warning, sorted by
 * id so every client builds the same tables. A warning instance whose warning weight is 0 is
 * left out: weight 0 means "send it nothing".
 *
 * @example
 * balancer.update(toEndpoints((await client.instances('web')).instances));
 */
export function toEndpoints(instances: readonly InstanceDto[]): Endpoint[] {
  const endpoints: Endpoint[] = [];
  for (const instance of instances) {
    if (instance.status !== 'passing' && instance.status !== 'warning') continue;
    const weight =
      instance.status === 'passing' ? instance.weights.passing : instance.weights.warning;
    if (!(weight >= 1)) continue;
    endpoints.push(
      Object.freeze({
        id: instance.id,
        address: instance.address,
        port: instance.port,
        weight,
        status: instance.status,
        zone: instance.meta.zone,
        priority: instance.priority,
        tags: instance.tags,
        meta: instance.meta,
      }),
    );
  }
  return endpoints.sort((a, b) => compareIds(a.id, b.id));
}
