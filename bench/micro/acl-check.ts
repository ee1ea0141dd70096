/**
 * @module Micro benchmark of the per-request ACL work (issue 20, "CPU cost of the ACL check per
 * request"): the token read from the headers, the Authorizer found in the resolver's cache, and
 * one check, for tokens whose policies hold 1, 10 and 100 prefix rules (exact hit, longest-prefix
 * hit, no match); beside it, the same with ACLs off. Setup stays outside timing; results are kept
 * live (mitata's do_not_optimize).
 * Usage: npm run bench:acl [-- --quick] [-- --rounds N]
 */
import { cpus, loadavg } from 'node:os';
import { do_not_optimize, measure } from 'mitata';
import { requestToken } from '../../src/registry/acl/acl-contract.js';
import { createMemoryAclStore } from '../../src/registry/acl/acl-store.js';
import { AclSystem } from '../../src/registry/acl/acl-system.js';
import { flags } from '../lib/load.js';

const opts = flags('npm run bench:acl [-- --quick] [-- --rounds N]', {
  quick: { default: false, help: 'shorter samples, noisier numbers' },
  rounds: { default: 3, help: 'measure every cell N times and report the median' },
});
const MIN_CPU_TIME_NS = opts.quick ? 100e6 : 500e6;
const ROUNDS = Math.max(1, Math.trunc(opts.rounds) || 1);
const RULES = [1, 10, 100] as const;

/** An ACL system whose token's policy has `n` prefix rules (svc-0..) and one exact rule. */
async function system(n: number, enabled = true): Promise<{ acl: AclSystem; secret: string }> {
  const acl = new AclSystem({ store: createMemoryAclStore(), enabled, defaultPolicy: 'deny' });
  await acl.start();
  const rules = [
    'service "payments" { policy = "write" }',
    ...Array.from({ length: n }, (_, i) => `service_prefix "svc-${i}-" { policy = "read" }`),
  ].join('\n');
  await acl.createPolicy({ name: 'p', rules });
  const t = await acl.createToken({ policies: [{ name: 'p' }] });
  return { acl, secret: t.secretId };
}

async function median(once: () => Promise<number>): Promise<number> {
  const v: number[] = [];
  for (let r = 0; r < ROUNDS; r++) v.push(await once());
  v.sort((a, b) => a - b);
  return v[(v.length - 1) >> 1]!;
}

/** ns per request: read the token, find its Authorizer, check `name`. */
async function perRequest(n: number, name: string, enabled = true): Promise<number> {
  const { acl, secret } = await system(n, enabled);
  const headers = { host: '127.0.0.1:8500', 'x-consul-token': secret, accept: '*/*' };
  const query = {};
  await acl.resolve(secret); // cached from here on, as on an agent
  return median(async () => {
    const stats = await measure(
      function* () {
        yield () => {
          const auth = acl.resolveCached(requestToken(headers, query))!;
          return do_not_optimize(auth.check('service', name, 'read'));
        };
      },
      { min_cpu_time: MIN_CPU_TIME_NS },
    );
    return stats.avg;
  });
}

const loadBefore = loadavg()[0]!;
const started = new Date();
const rows: string[] = [];
for (const n of RULES) {
  const exact = await perRequest(n, 'payments');
  const prefix = await perRequest(n, `svc-${n - 1}-api`); // the last prefix tried
  const none = await perRequest(n, 'orders');
  rows.push(`| ${n} | ${exact.toFixed(0)} | ${prefix.toFixed(0)} | ${none.toFixed(0)} |`);
}
const off = await perRequest(1, 'payments', false);

console.log(
  `\nacl-check: ${started.toISOString()}, nproc ${cpus().length}, ${cpus()[0]?.model ?? '?'}, Node ${process.version}, load average ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after`,
);
console.log(
  `\nns per request (token from the headers + cached Authorizer + one check), median of ${ROUNDS} rounds:\n`,
);
console.log(
  '| prefix rules in the token | exact rule | longest prefix (last tried) | no rule (default deny) |',
);
console.log('| --: | --: | --: | --: |');
for (const row of rows) console.log(row);
console.log(`\nACLs off (the same path): ${off.toFixed(0)} ns per request`);
