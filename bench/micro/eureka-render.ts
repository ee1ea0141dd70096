/**
 * @module Micro benchmark of the Eureka codec's writers (issue 23, "full-registry fetch with 10,000
 * instances"): `GET /apps` rendered as XML by the direct string writer, as XML by fast-xml-parser's
 * XMLBuilder over the same tree (the writer is kept only while XMLBuilder is more than ~1.5x slower),
 * and as JSON; beside them, a 100-instance delta, and the bytes of each answer. Setup stays outside
 * timing; results are kept live (mitata's do_not_optimize).
 * Usage: node --import tsx bench/micro/eureka-render.ts [--quick] [--rounds N]
 */
import { cpus, loadavg } from 'node:os';
import { XMLBuilder } from 'fast-xml-parser';
import { do_not_optimize, measure } from 'mitata';
import { renderApplications } from '../../src/registry-api/eureka/eureka-codec.js';
import {
  DEFAULT_DATACENTER_CLASS,
  appsHashCode,
  type EurekaApplications,
  type EurekaInstanceView,
} from '../../src/registry-api/eureka/eureka-model.js';
import { flags } from '../lib/load.js';

const opts = flags('node --import tsx bench/micro/eureka-render.ts [--quick] [--rounds N]', {
  quick: { default: false, help: 'shorter samples, noisier numbers' },
  rounds: { default: 3, help: 'measure every cell N times and report the median' },
});
const MIN_CPU_TIME_NS = opts.quick ? 300e6 : 1500e6;
const ROUNDS = Math.max(1, Math.trunc(opts.rounds) || 1);
const APPS = 100;

/** A Spring-like instance: four metadata keys, URLs, vip addresses. */
function instance(i: number): EurekaInstanceView {
  const app = `SERVICE-${i % APPS}`;
  const host = `host-${i}.prod.example.internal`;
  return {
    instanceId: `${host}:${app.toLowerCase()}:8080`,
    app,
    appGroupName: undefined,
    hostName: host,
    ipAddr: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    status: i % 50 === 0 ? 'DOWN' : 'UP',
    overriddenStatus: 'UNKNOWN',
    port: { port: 8080, enabled: true },
    securePort: { port: 443, enabled: false },
    vipAddress: app.toLowerCase(),
    secureVipAddress: app.toLowerCase(),
    homePageUrl: `http://${host}:8080/`,
    statusPageUrl: `http://${host}:8080/actuator/info`,
    healthCheckUrl: `http://${host}:8080/actuator/health`,
    secureHealthCheckUrl: undefined,
    dataCenterInfo: { name: 'MyOwn', className: DEFAULT_DATACENTER_CLASS, metadata: {} },
    leaseInfo: {
      renewalIntervalInSecs: 30,
      durationInSecs: 90,
      registrationTimestamp: 1_700_000_000_000 + i,
      lastRenewalTimestamp: 1_700_000_030_000 + i,
      evictionTimestamp: 0,
      serviceUpTimestamp: 1_700_000_000_500 + i,
    },
    metadata: {
      'management.port': '8080',
      zone: `zone-${i % 3}`,
      version: '1.4.2',
      'prometheus.path': '/actuator/prometheus',
    },
    lastUpdatedTimestamp: 1_700_000_000_000 + i,
    lastDirtyTimestamp: 1_700_000_000_000 + i,
    actionType: 'ADDED',
  };
}

function registry(n: number): EurekaApplications {
  const views = Array.from({ length: n }, (_, i) => instance(i));
  const byApp = new Map<string, EurekaInstanceView[]>();
  for (const v of views) byApp.set(v.app, [...(byApp.get(v.app) ?? []), v]);
  return {
    versionsDelta: 42,
    appsHashCode: appsHashCode(views.map((v) => v.status)),
    applications: [...byApp].map(([name, instances]) => ({ name, instances })),
  };
}

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_' });

/** The same document through XMLBuilder: the tree is built per call, as a route would. */
function viaBuilder(apps: EurekaApplications): string {
  const port = (p: { port: number; enabled: boolean }): object => ({
    '#text': p.port,
    '@_enabled': String(p.enabled),
  });
  return builder.build({
    applications: {
      versions__delta: apps.versionsDelta,
      apps__hashcode: apps.appsHashCode,
      application: apps.applications.map((a) => ({
        name: a.name,
        instance: a.instances.map((v) => ({
          instanceId: v.instanceId,
          hostName: v.hostName,
          app: v.app,
          ipAddr: v.ipAddr,
          status: v.status,
          overriddenstatus: v.overriddenStatus,
          port: port(v.port),
          securePort: port(v.securePort),
          countryId: 1,
          dataCenterInfo: { '@_class': v.dataCenterInfo.className, name: v.dataCenterInfo.name },
          leaseInfo: { ...v.leaseInfo },
          metadata: { ...v.metadata },
          homePageUrl: v.homePageUrl,
          statusPageUrl: v.statusPageUrl,
          healthCheckUrl: v.healthCheckUrl,
          vipAddress: v.vipAddress,
          secureVipAddress: v.secureVipAddress,
          isCoordinatingDiscoveryServer: 'false',
          lastUpdatedTimestamp: v.lastUpdatedTimestamp,
          lastDirtyTimestamp: v.lastDirtyTimestamp,
          actionType: v.actionType,
        })),
      })),
    },
  }) as string;
}

/** Median of ROUNDS measurements of `fn`, in ms per call. */
async function median(fn: () => string): Promise<number> {
  const v: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const stats = await measure(
      function* () {
        yield () => do_not_optimize(fn());
      },
      { min_cpu_time: MIN_CPU_TIME_NS },
    );
    v.push(stats.avg / 1e6);
  }
  v.sort((a, b) => a - b);
  return v[(v.length - 1) >> 1]!;
}

const full = registry(10_000);
const delta = registry(100);
const loadBefore = loadavg()[0]!;
const started = new Date();
const cells: [string, () => string][] = [
  ['10,000 instances, XML (string writer)', () => renderApplications(full, 'xml')],
  ['10,000 instances, XML (XMLBuilder)', () => viaBuilder(full)],
  ['10,000 instances, JSON', () => renderApplications(full, 'json')],
  ['delta of 100 instances, XML', () => renderApplications(delta, 'xml')],
  ['delta of 100 instances, JSON', () => renderApplications(delta, 'json')],
];
const rows: string[] = [];
const results = new Map<string, number>();
for (const [name, fn] of cells) {
  const ms = await median(fn);
  results.set(name, ms);
  rows.push(`| ${name} | ${ms.toFixed(2)} | ${Buffer.byteLength(fn()).toLocaleString('en')} |`);
}

console.log(
  `\neureka-render: ${started.toISOString()}, nproc ${cpus().length}, ${cpus()[0]?.model ?? '?'}, Node ${process.version}, load average ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after`,
);
console.log(`\nms per render, median of ${ROUNDS} rounds (${APPS} applications):\n`);
console.log('| answer | ms | bytes |');
console.log('| :-- | --: | --: |');
for (const row of rows) console.log(row);
const ratio = results.get(cells[1]![0])! / results.get(cells[0]![0])!;
console.log(`\nXMLBuilder / string writer: ${ratio.toFixed(2)}x`);
