/** @module Runs the Balancer contract against every balancer createBalancer makes. */
import { createBalancer } from '../../src/client/balancers/index.js';
import type { BalancerSpec } from '../../src/client/balancers/balancer.js';
import { runBalancerContract } from './balancer.contract.js';

const SPECS: readonly (readonly [string, BalancerSpec])[] = [
  ['round-robin', 'round-robin'],
  ['weighted-round-robin', 'weighted-round-robin'],
  ['random', 'random'],
  ['least-request', 'least-request'],
  ['least-request, 3 choices', { type: 'least-request', choices: 3 }],
  ['ring-hash', 'ring-hash'],
  ['maglev', 'maglev'],
  ['maglev, small table', { type: 'maglev', tableSize: 251 }],
  // The contract's endpoints are all in eu-west-1a: one zone-aware stays local, one spills over.
  ['zone-aware, local zone', { type: 'zone-aware', localZone: 'eu-west-1a' }],
  [
    'zone-aware, no endpoint local',
    { type: 'zone-aware', localZone: 'us-east-1a', inner: 'least-request' },
  ],
];

for (const [name, spec] of SPECS)
  runBalancerContract(name, (random) => createBalancer(spec, { random }));
