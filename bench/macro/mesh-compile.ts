/**
 * @module bench:mesh-compile: the control plane's compiler at 1,000 services and 10,000
 * instances, in process over the in-memory catalog fake: first compiles, a gateway that routes to
 * every service compiled whole, and what one instance status change costs (the affected proxies
 * recompiled, and only those), alone, in a burst, and beside proxies that read every service.
 * Usage: npm run bench:mesh-compile [-- --services N --instances N --sidecars N --calls N]
 */
import { Registry as PromRegistry } from 'prom-client';
import type { HttpRoute } from '../../src/protocol/mesh/specs.js';
import type { MeshResource } from '../../src/protocol/mesh/resource.js';
import type { ProxyIdentity } from '../../src/protocol/mesh/snapshot.js';
import { createControlPlane } from '../../src/control-plane/control-plane.js';
import {
  FakeMeshCatalog,
  fakeInstance,
  fakeResource,
} from '../../src/testing/fake-mesh-catalog.js';
import { flags } from '../lib/load.js';
import { fmt, Report, settle, table } from '../lib/report.js';
import { summarize } from '../lib/stats.js';
import { seededRandom } from '../../test/helpers/seeded-random.js';

const opts = flags('npm run bench:mesh-compile -- [flags]', {
  services: { default: 1000, help: 'catalog services' },
  instances: { default: 10_000, help: 'instances, spread evenly over the services' },
  sidecars: { default: 1000, help: 'distinct sidecar identities watching' },
  calls: { default: 3, help: 'services each sidecar declares as upstreams' },
  routed: {
    default: 10,
    help: '% of services with a VirtualService (90/10 split) and DestinationRule',
  },
  changes: { default: 300, help: 'single status changes measured per phase' },
  burst: { default: 100, help: 'status changes (distinct services) in the burst phase' },
  seed: { default: 18, help: 'seed of the upstream choice and the changes' },
  'quiet-wait': { default: 300, help: 'seconds to wait for other work on the machine to settle' },
});

const busyBefore = await settle(opts['quiet-wait']);
const random = seededRandom(opts.seed);
const pick = (n: number): number => Math.floor(random() * n);
const svc = (i: number): string => `svc-${String(i).padStart(4, '0')}`;
const perService = Math.max(1, Math.round(opts.instances / opts.services));

// The catalog: `perService` instances per service, half v1, half v2.
const instances = [];
for (let s = 0; s < opts.services; s++) {
  for (let k = 0; k < perService; k++) {
    instances.push(
      fakeInstance(`${svc(s)}-${k}`, svc(s), {
        address: `10.${(s >> 8) & 255}.${s & 255}.${k + 1}`,
        meta: { version: k % 2 === 0 ? 'v1' : 'v2' },
      }),
    );
  }
}

// The resources: a canary split and a DestinationRule on every `routed`-th service, and one
// gateway VirtualService routing a prefix to each service.
const resources: MeshResource[] = [];
const routedEvery = Math.max(1, Math.round(100 / Math.max(1, opts.routed)));
const canary = (s: number, v1: number): MeshResource =>
  fakeResource('VirtualService', svc(s), {
    hosts: [svc(s)],
    http: [
      {
        name: 'canary',
        match: [{ headers: { 'x-canary': { exact: '1' } } }],
        route: [{ destination: { host: svc(s), subset: 'v2' } }],
      },
      {
        route: [
          { destination: { host: svc(s), subset: 'v1' }, weight: v1 },
          { destination: { host: svc(s), subset: 'v2' }, weight: 100 - v1 },
        ],
        retries: { attempts: 3, retryOn: '5xx,reset' },
        timeout: '2s',
      },
    ],
  });
for (let s = 0; s < opts.services; s += routedEvery) {
  resources.push(
    fakeResource('DestinationRule', svc(s), {
      host: svc(s),
      trafficPolicy: {
        loadBalancer: { simple: 'LEAST_REQUEST' },
        outlierDetection: { consecutive5xxErrors: 5, interval: '10s' },
      },
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    }),
    canary(s, 90),
  );
}
const gatewayRoutes: HttpRoute[] = [];
for (let s = 0; s < opts.services; s++) {
  gatewayRoutes.push({
    match: [{ uri: { prefix: `/${svc(s)}/` } }],
    rewrite: { uri: '/' },
    route: [{ destination: { host: svc(s) } }],
  });
}
resources.push(
  fakeResource('VirtualService', 'edge', { hosts: ['*'], gateways: ['edge'], http: gatewayRoutes }),
);

const catalog = new FakeMeshCatalog(instances, resources);
const metrics = new PromRegistry();
let pending: (() => void) | undefined;
const cp = createControlPlane({
  catalog,
  metrics,
  schedule: (run) => {
    pending = run;
  },
});
const compiles = async (): Promise<number> => {
  const m = await metrics.getSingleMetric('meshwork_control_plane_compiles_total')?.get();
  return (m?.values ?? []).reduce((sum, v) => sum + v.value, 0);
};
let pushes = 0;
const onSnapshot = (): void => {
  pushes += 1;
};

/** Runs the scheduled recompile; returns its ms. */
function flush(): number {
  const run = pending;
  pending = undefined;
  const start = performance.now();
  run?.();
  return performance.now() - start;
}

const rows: unknown[][] = [];
const time = (fn: () => void): number => {
  const start = performance.now();
  fn();
  return performance.now() - start;
};

// 1. First compiles of the sidecars.
const sidecars: ProxyIdentity[] = [];
for (let k = 0; k < opts.sidecars; k++) {
  const upstreams = new Set<string>();
  while (upstreams.size < Math.min(opts.calls, opts.services))
    upstreams.add(svc(pick(opts.services)));
  sidecars.push({
    id: `client-${k}`,
    kind: 'sidecar',
    name: `client-${k}`,
    namespace: 'default',
    upstreams: [...upstreams],
  });
}
const firstMs = time(() => {
  for (const p of sidecars) cp.watch(p, onSnapshot);
});
rows.push([
  `first compile of ${fmt(opts.sidecars)} sidecars (${opts.calls} upstreams each)`,
  fmt(firstMs),
  '',
  '',
  opts.sidecars,
  fmt((firstMs * 1000) / opts.sidecars),
]);

/** `n` single status changes, each flushed alone; a row of flush ms and compiles per change. */
async function singleChanges(label: string, n: number): Promise<void> {
  const ms: number[] = [];
  const before = await compiles();
  for (let c = 0; c < n; c++) {
    const s = pick(opts.services);
    const id = `${svc(s)}-${pick(perService)}`;
    const current = catalog.serviceInstances(svc(s)).find((i) => i.id === id);
    catalog.setStatus(id, current?.status === 'passing' ? 'critical' : 'passing');
    ms.push(flush());
  }
  const count = (await compiles()) - before;
  const sum = summarize(ms);
  const total = ms.reduce((a, b) => a + b, 0);
  rows.push([
    label,
    fmt(sum.mean),
    fmt(sum.p50),
    fmt(sum.p99),
    fmt(count / n),
    fmt((total * 1000) / Math.max(1, count)),
  ]);
}

await singleChanges('one instance status change (sidecars only)', opts.changes);

// 2. A burst of status changes on distinct services, one recompile.
{
  const before = await compiles();
  for (let c = 0; c < opts.burst; c++) {
    const s = (c * Math.floor(opts.services / opts.burst)) % opts.services;
    catalog.setStatus(`${svc(s)}-0`, c % 2 === 0 ? 'warning' : 'passing');
  }
  const ms = flush();
  const count = (await compiles()) - before;
  rows.push([
    `burst of ${opts.burst} status changes, one flush`,
    fmt(ms),
    '',
    '',
    count,
    fmt((ms * 1000) / Math.max(1, count)),
  ]);
}

// 3. A VirtualService change (weights of one canary).
{
  const before = await compiles();
  catalog.putResource(canary(0, 50));
  const ms = flush();
  const count = (await compiles()) - before;
  rows.push([
    'a VirtualService weight change',
    fmt(ms),
    '',
    '',
    count,
    fmt((ms * 1000) / Math.max(1, count)),
  ]);
}

// 4. The gateway routing to every service: a full compile, then what a status change costs
// with it watching (it reads every service, so every change recompiles it).
const gateway: ProxyIdentity = {
  id: 'edge-1',
  kind: 'gateway',
  name: 'edge',
  namespace: 'default',
};
let gatewaySize = '';
{
  const before = await compiles();
  let routesN = 0;
  let clustersN = 0;
  let endpointsN = 0;
  let bytes = 0;
  const ms = time(() =>
    cp.watch(gateway, (s) => {
      if (bytes > 0) return; // measured on the first snapshot only, outside later timings
      routesN = s.routes.length;
      clustersN = s.clusters.length;
      endpointsN = s.clusters.reduce((n, c) => n + c.endpoints.length, 0);
      bytes = JSON.stringify(s).length;
    }),
  );
  rows.push([
    'full compile of a gateway routing to every service',
    fmt(ms),
    '',
    '',
    (await compiles()) - before,
    fmt(ms * 1000),
  ]);
  gatewaySize = `${fmt(routesN)} routes, ${fmt(clustersN)} clusters, ${fmt(endpointsN)} endpoints, ${fmt(bytes / 1024)} KiB of JSON`;
}
await singleChanges(
  'one instance status change (sidecars + that gateway)',
  Math.min(opts.changes, 100),
);

// 5. One sidecar without declared upstreams (Istio's default: it reads every service).
{
  const before = await compiles();
  const ms = time(() =>
    cp.watch({ id: 'all-1', kind: 'sidecar', name: 'all', namespace: 'default' }, onSnapshot),
  );
  rows.push([
    'full compile of a sidecar without declared upstreams',
    fmt(ms),
    '',
    '',
    (await compiles()) - before,
    fmt(ms * 1000),
  ]);
}
await singleChanges('one instance status change (+ that sidecar too)', Math.min(opts.changes, 100));

const report = new Report('mesh-compile', 'npm run bench:mesh-compile');
report.meta(
  `${fmt(opts.services)} services, ${fmt(perService * opts.services)} instances, ${fmt(resources.length)} resources (a 90/10 VirtualService and a DestinationRule on every ${routedEvery}th service, one gateway VirtualService with a route per service); ${fmt(opts.sidecars)} sidecar identities with ${opts.calls} upstreams each; in process, the catalog fake`,
);
report.quiet(busyBefore);
report.meta(`gateway snapshot: ${gatewaySize}`);
report.meta(`watcher calls (new versions delivered): ${fmt(pushes)}`);
report.text(
  table(['what', 'ms (mean)', 'p50 ms', 'p99 ms', 'compiles (per change)', 'µs per compile'], rows),
);
cp.close();
report.finish();
