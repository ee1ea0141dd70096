/**
 * @module Micro benchmark of the sidecar's AuthorizationPolicy filter: one request's onRequest
 * (attributes, path normalization, evaluation) against the seed 003 policy plus a DENY on paths,
 * one on ipBlocks and an ALLOW on a header, for an allowed request, a request denied by a DENY
 * policy, one no ALLOW policy matched, and one whose path needs normalizing; and the evaluation
 * alone. Setup stays outside timing; results are kept live.
 * Usage: npm run bench:authorization [-- --quick]
 */
import { cpus, loadavg } from 'node:os';
import { silentLogger } from '../../src/core/logger.js';
import type { FilterExchange } from '../../src/proxy/filter.js';
import {
  AuthorizationCounts,
  createAuthorizationFilter,
} from '../../src/proxy/filters/authorization/authorization-filter.js';
import {
  compileAuthorization,
  isAuthorizationProblems,
  type AuthorizationPolicyEntry,
  type AuthorizationRequest,
} from '../../src/proxy/filters/authorization/authorization-policy.js';
import { setPeerIdentity } from '../../src/proxy/peer-identity.js';
import { flags } from '../lib/load.js';

const opts = flags('npm run bench:authorization [-- --quick]', {
  quick: { default: false, help: 'shorter samples, noisier numbers' },
});
const N = opts.quick ? 100_000 : 1_000_000;
const ROUNDS = 5;

const PEDIDO = 'cluster.local/ns/default/sa/pedido-service';
const POLICIES: AuthorizationPolicyEntry[] = [
  {
    key: 'AuthorizationPolicy/default/usuario-service-policy',
    spec: {
      action: 'ALLOW',
      rules: [
        {
          from: [
            { source: { principals: [PEDIDO, 'cluster.local/ns/default/sa/inventario-service'] } },
          ],
          to: [{ operation: { methods: ['GET', 'POST'], paths: ['/usuarios/*'] } }],
        },
        {
          from: [{ source: { principals: ['cluster.local/ns/default/sa/api-gateway'] } }],
          to: [{ operation: { methods: ['GET', 'POST', 'PUT', 'DELETE'] } }],
        },
        { when: [{ key: 'request.headers[x-api-key]', values: ['key-*'] }] },
      ],
    },
  },
  {
    key: 'AuthorizationPolicy/default/deny-admin',
    spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin', '/admin/*'] } }] }] },
  },
  {
    key: 'AuthorizationPolicy/default/deny-addresses',
    spec: {
      action: 'DENY',
      rules: [{ from: [{ source: { ipBlocks: ['192.168.0.0/16', 'fd00::/8'] } }] }],
    },
  },
];

const compiled = compileAuthorization(POLICIES);
if (isAuthorizationProblems(compiled)) throw new Error(compiled.problems.join('\n'));
const filter = createAuthorizationFilter({
  compiled,
  destinationPort: 8080,
  counts: new AuthorizationCounts(),
  logger: silentLogger,
});

const socket = { remoteAddress: '10.1.2.3', localAddress: '10.9.9.9', localPort: 15006 };
setPeerIdentity(socket, { mtls: true, principal: PEDIDO, namespace: 'default' });
const plaintext = { remoteAddress: '10.1.2.4', localAddress: '10.9.9.9', localPort: 15006 };

/**
 * An exchange made once and handed out again per call with its path reset (the filter may
 * rewrite it): what is timed is the filter, not building objects.
 */
function exchange(method: string, path: string, s: object): () => FilterExchange {
  const x: FilterExchange = {
    method,
    path,
    headers: { host: 'usuario-service:8080', 'user-agent': 'bench', accept: '*/*' },
    authority: 'usuario-service:8080',
    socket: s,
    setRequestHeader: () => undefined,
    addRequestHeader: () => undefined,
    removeRequestHeader: () => undefined,
  };
  return () => {
    x.path = path;
    return x;
  };
}

const CASES: readonly [string, () => FilterExchange][] = [
  ['allowed (mTLS, GET /usuarios/1)', exchange('GET', '/usuarios/1?x=1', socket)],
  ['denied by DENY (/admin/users)', exchange('GET', '/admin/users', socket)],
  ['denied, no ALLOW matched (plaintext)', exchange('GET', '/usuarios/1', plaintext)],
  ['allowed, path normalized (/usuarios/./a/../1)', exchange('GET', '/usuarios/./a/../1', socket)],
];

const request: AuthorizationRequest = {
  method: 'GET',
  path: '/usuarios/1',
  authority: 'usuario-service:8080',
  host: 'usuario-service',
  headers: {},
  sourceIp: '10.1.2.3',
  destinationIp: '10.9.9.9',
  destinationPort: 8080,
  principal: PEDIDO,
  namespace: 'default',
  sni: undefined,
};

/**
 * Median ns per call of `fn` over ROUNDS rounds of `n` calls: a plain loop (mitata's batches
 * reported ten times this for the same code on the loaded 2-core machine).
 */
function nsPerCall(fn: () => unknown, n: number): number {
  const rounds: number[] = [];
  let sink: unknown;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink = fn();
    rounds.push(Number(process.hrtime.bigint() - t0) / n);
  }
  if (sink === Symbol.for('never')) console.log(sink); // keeps the results live
  rounds.sort((a, b) => a - b);
  return rounds[(rounds.length - 1) >> 1] as number;
}

console.log(
  `authorization filter on ${cpus()[0]?.model ?? 'cpu'}, load ${loadavg()[0]?.toFixed(1)}`,
);
console.log('ns per request, median of rounds');
// Warm every case up first, so the first one measured does not pay for compiling the rest.
for (let i = 0; i < 50_000; i++) for (const [, make] of CASES) filter.onRequest?.(make());
const baseline = CASES[0]?.[1] as () => FilterExchange;
console.log(
  `${'baseline: handing out the exchange'.padEnd(48)} ${nsPerCall(baseline, N).toFixed(0).padStart(6)} ns`,
);
for (const [name, make] of CASES)
  console.log(
    `${name.padEnd(48)} ${nsPerCall(() => filter.onRequest?.(make()), N)
      .toFixed(0)
      .padStart(6)} ns`,
  );
console.log(
  `${'evaluate() alone (allowed)'.padEnd(48)} ${nsPerCall(() => compiled.evaluate(request), N)
    .toFixed(0)
    .padStart(6)} ns`,
);
