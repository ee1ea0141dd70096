/**
 * Mesh resource parsing (issue 18): good and bad documents of every kind, each refusal at its
 * exact path; the seed 003 YAML with its warnings; the docs' examples; and properties (never
 * throws, idempotent on the normalised form).
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseAllDocuments } from 'yaml';
import {
  isMeshDocument,
  parseMeshResource,
  type ParseResult,
} from '../../../src/protocol/mesh/parse.js';
import { checkReferences } from '../../../src/protocol/mesh/references.js';
import { MESH_LIMITS } from '../../../src/protocol/mesh/schema-common.js';
import { userRegexSize } from '../../../src/protocol/user-regex.js';
import {
  MESH_KINDS,
  MESH_KIND_INFO,
  type MeshKind,
  type MeshResource,
} from '../../../src/protocol/mesh/resource.js';
import type {
  DestinationRuleSpec,
  ServiceEntrySpec,
  VirtualServiceSpec,
} from '../../../src/protocol/mesh/specs.js';

const SEED = 18;

type Doc = Record<string, unknown>;

/** A document of `kind` at its first listed version, named `name` unless `metadata` is given. */
function doc(kind: MeshKind, spec: unknown, metadata: Doc = { name: 'r1' }): Doc {
  const info = MESH_KIND_INFO[kind];
  return { apiVersion: `${info.group}/${info.versions[0]}`, kind, metadata, spec };
}

const vs = (spec: Doc) => doc('VirtualService', { hosts: ['payments'], ...spec });
const route1 = (extra: Doc = {}) =>
  vs({ http: [{ route: [{ destination: { host: 'payments' } }], ...extra }] });
const dr = (spec: Doc) => doc('DestinationRule', { host: 'payments', ...spec });
const se = (spec: Doc) =>
  doc('ServiceEntry', {
    hosts: ['api.example.com'],
    ports: [{ number: 443, name: 'https', protocol: 'HTTPS' }],
    ...spec,
  });
const ap = (spec: Doc) => doc('AuthorizationPolicy', spec);
const pa = (spec: Doc) => doc('PeerAuthentication', spec);
const bucket = { maxTokens: 100, tokensPerFill: 10, fillInterval: '1s' };
const lrl = (spec: Doc) => doc('LocalRateLimit', spec);

function ok(r: ParseResult): MeshResource {
  assert.ok(r.ok, `refused: ${r.ok ? '' : JSON.stringify(r.problems)}`);
  return r.resource;
}

interface Good {
  readonly name: string;
  readonly doc: unknown;
  /** Checks on the normalised resource. */
  readonly check?: (r: MeshResource) => void;
  /** Fragments of the warnings, in order (none expected when absent). */
  readonly warnings?: readonly string[];
}

/** A refused document: exactly these paths, each reason holding its fragment. */
interface Bad {
  readonly name: string;
  readonly doc: unknown;
  readonly problems: readonly (readonly [path: string, reason: string])[];
}

const GOOD: readonly Good[] = [
  // Envelope
  {
    name: 'envelope: namespace defaults to default, apiVersion normalised to the newest',
    doc: { ...route1(), apiVersion: 'networking.istio.io/v1alpha3' },
    check: (r) => {
      assert.equal(r.apiVersion, 'networking.istio.io/v1');
      assert.deepEqual(r.metadata, { name: 'r1', namespace: 'default' });
    },
  },
  {
    name: 'envelope: namespace, labels and annotations kept',
    doc: {
      ...route1(),
      metadata: {
        name: 'payments.routes',
        namespace: 'shop',
        labels: { 'app.kubernetes.io/name': 'payments', tier: '' },
        annotations: { 'meshwork.dev/owner': 'team payments\nsecond line' },
      },
    },
    check: (r) => assert.equal(r.metadata.namespace, 'shop'),
  },
  // VirtualService
  {
    name: 'VirtualService: every supported field',
    doc: vs({
      hosts: ['payments', 'payments.shop.svc.cluster.local', '*.example.com'],
      gateways: ['mesh', 'meshwork-gateway', 'edge/public-gw'],
      http: [
        {
          name: 'canary',
          match: [
            {
              name: 'by-header',
              uri: { prefix: '/api/' },
              method: { exact: 'GET' },
              authority: { regex: '^pay(ments)?(:[0-9]+)?$' },
              headers: { 'X-Canary': { exact: 'true' } },
              queryParams: { debug: { regex: '^(1|true)$' } },
              ignoreUriCase: true,
            },
          ],
          route: [
            { destination: { host: 'payments', subset: 'v1', port: { number: 8080 } }, weight: 90 },
            {
              destination: { host: 'payments', subset: 'v2' },
              weight: 10,
              headers: { response: { set: { 'X-Version': 'v2' } } },
            },
          ],
          rewrite: { uri: '/v2/', authority: 'payments:8080' },
          timeout: '1.5s',
          retries: {
            attempts: 3,
            perTryTimeout: '500ms',
            retryOn: '5xx,reset,connect-failure,503',
          },
          fault: {
            delay: { fixedDelay: '100ms', percentage: { value: 0.5 } },
            abort: { httpStatus: 503, percentage: { value: 1 } },
          },
          mirror: { host: 'payments-shadow' },
          mirrorPercentage: { value: 12.5 },
          headers: {
            request: { set: { 'X-Env': 'prod' }, add: { Via: 'meshwork' }, remove: ['X-Debug'] },
          },
        },
      ],
    }),
    check: (r) => {
      const h = (r.spec as VirtualServiceSpec).http[0];
      assert.deepEqual(h?.match?.[0]?.headers, { 'x-canary': { exact: 'true' } });
      assert.deepEqual(h?.headers?.request, {
        set: { 'x-env': 'prod' },
        add: { via: 'meshwork' },
        remove: ['x-debug'],
      });
      assert.deepEqual(h?.route[1]?.headers, { response: { set: { 'x-version': 'v2' } } });
      assert.deepEqual(
        h?.route.map((d) => d.weight),
        [90, 10],
      );
    },
  },
  {
    name: "VirtualService: a destination without weight in a split counts 0 (Istio's rule)",
    doc: vs({
      http: [
        {
          route: [
            { destination: { host: 'payments', subset: 'v1' }, weight: 100 },
            { destination: { host: 'payments', subset: 'v2' } },
          ],
        },
      ],
    }),
    check: (r) =>
      assert.deepEqual(
        (r.spec as VirtualServiceSpec).http[0]?.route.map((d) => d.weight),
        [100, 0],
      ),
  },
  {
    name: 'VirtualService: durations in every Istio form',
    doc: route1({ timeout: '1m30s', retries: { attempts: 0, perTryTimeout: '1h' } }),
  },
  {
    name: 'VirtualService: without hosts takes the host its destinations share (long form too)',
    doc: doc('VirtualService', {
      http: [
        { route: [{ destination: { host: 'payments' } }] },
        { route: [{ destination: { host: 'payments.default.svc.cluster.local' } }] },
      ],
    }),
    check: (r) => assert.deepEqual((r.spec as VirtualServiceSpec).hosts, ['payments']),
    warnings: ['spec.hosts: absent: taken as [payments]'],
  },
  {
    name: 'VirtualService: weight 100 on the only destination is dropped without a word',
    doc: vs({ http: [{ route: [{ destination: { host: 'payments' }, weight: 100 }] }] }),
    check: (r) =>
      assert.deepEqual((r.spec as VirtualServiceSpec).http[0]?.route, [
        { destination: { host: 'payments' } },
      ]),
  },
  {
    name: 'VirtualService: a weight on the only destination is ignored, with a warning',
    doc: vs({ http: [{ route: [{ destination: { host: 'payments' }, weight: 10 }] }] }),
    check: (r) =>
      assert.deepEqual((r.spec as VirtualServiceSpec).http[0]?.route, [
        { destination: { host: 'payments' } },
      ]),
    warnings: [
      "spec.http[0].route[0].weight: ignored: a route's only destination gets all of that route's traffic",
    ],
  },
  // DestinationRule
  {
    name: 'DestinationRule: subsets and traffic policies',
    doc: dr({
      trafficPolicy: {
        loadBalancer: { simple: 'LEAST_REQUEST' },
        connectionPool: {
          tcp: { maxConnections: 100, connectTimeout: '2s' },
          http: {
            http1MaxPendingRequests: 10,
            http2MaxRequests: 100,
            maxRequestsPerConnection: 1,
            maxRetries: 3,
            idleTimeout: '1m',
          },
        },
        outlierDetection: {
          consecutive5xxErrors: 5,
          consecutiveGatewayErrors: 0,
          interval: '10s',
          baseEjectionTime: '30s',
          maxEjectionPercent: 50,
          minHealthPercent: 0,
        },
      },
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        {
          name: 'v2',
          labels: { version: 'v2', zone_a: 'x' },
          trafficPolicy: {
            loadBalancer: {
              consistentHash: { httpHeaderName: 'X-User', ringHash: { minimumRingSize: 1024 } },
            },
          },
        },
        {
          name: 'sticky',
          trafficPolicy: {
            loadBalancer: {
              consistentHash: { httpCookie: { name: 'SESSION', path: '/', ttl: '0s' } },
            },
          },
        },
        {
          name: 'maglev',
          trafficPolicy: {
            loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 65537 } } },
          },
        },
      ],
    }),
    check: (r) => {
      const lb = (r.spec as DestinationRuleSpec).subsets?.[1]?.trafficPolicy?.loadBalancer;
      assert.equal(lb?.consistentHash?.httpHeaderName, 'x-user');
    },
  },
  {
    name: 'DestinationRule: circuitBreaker (with consecutiveErrors) read as outlierDetection',
    doc: dr({ trafficPolicy: { circuitBreaker: { consecutiveErrors: 3, interval: '5s' } } }),
    check: (r) =>
      assert.deepEqual((r.spec as DestinationRuleSpec).trafficPolicy, {
        outlierDetection: { consecutive5xxErrors: 3, interval: '5s' },
      }),
    warnings: [
      'spec.trafficPolicy.circuitBreaker: read as outlierDetection',
      'spec.trafficPolicy.circuitBreaker.consecutiveErrors: read as outlierDetection.consecutive5xxErrors',
    ],
  },
  {
    name: 'DestinationRule: trafficPolicy.tls ISTIO_MUTUAL and DISABLE (issue 20)',
    doc: dr({
      trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } },
      subsets: [{ name: 'plain', trafficPolicy: { tls: { mode: 'DISABLE' } } }],
    }),
    check: (r) => {
      const spec = r.spec as DestinationRuleSpec;
      assert.deepEqual(spec.trafficPolicy?.tls, { mode: 'ISTIO_MUTUAL' });
      assert.deepEqual(spec.subsets?.[0]?.trafficPolicy?.tls, { mode: 'DISABLE' });
    },
  },
  // ServiceEntry
  {
    name: 'ServiceEntry: resolution defaults to NONE, protocols upper-cased',
    doc: se({
      ports: [{ number: 443, name: 'https', protocol: 'https' }],
      location: 'MESH_EXTERNAL',
    }),
    check: (r) => {
      const spec = r.spec as ServiceEntrySpec;
      assert.equal(spec.resolution, 'NONE');
      assert.equal(spec.ports[0]?.protocol, 'HTTPS');
    },
  },
  {
    name: 'ServiceEntry: STATIC with IP endpoints naming declared ports',
    doc: se({
      hosts: ['legacy.internal'],
      ports: [
        { number: 80, name: 'http', protocol: 'HTTP', targetPort: 8080 },
        { number: 443, name: 'https' },
      ],
      resolution: 'STATIC',
      location: 'MESH_INTERNAL',
      endpoints: [
        { address: '10.0.0.1', ports: { http: 8081 }, labels: { dc: 'east' }, weight: 2 },
        { address: '2001:db8::1' },
      ],
    }),
  },
  {
    name: 'ServiceEntry: DNS with a host-name endpoint, and a wildcard with endpoints',
    doc: se({
      hosts: ['*.example.com'],
      resolution: 'DNS',
      endpoints: [{ address: 'proxy.example.com' }],
    }),
  },
  // Sidecar
  { name: 'Sidecar: an empty spec', doc: doc('Sidecar', {}) },
  {
    name: 'Sidecar: REGISTRY_ONLY for selected workloads',
    doc: doc('Sidecar', {
      workloadSelector: { matchLabels: { app: 'orders' } },
      outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
    }),
  },
  {
    name: "Sidecar: Istio's workloadSelector.labels, stored as matchLabels",
    doc: doc('Sidecar', { workloadSelector: { labels: { app: 'orders' } } }),
    check: (r) =>
      assert.deepEqual(r.spec, { workloadSelector: { matchLabels: { app: 'orders' } } }),
  },
  // AuthorizationPolicy
  {
    name: 'AuthorizationPolicy: action defaults to ALLOW; an empty spec allows nothing',
    doc: ap({}),
    check: (r) => assert.deepEqual(r.spec, { action: 'ALLOW' }),
  },
  {
    name: 'AuthorizationPolicy: DENY with every rule field',
    doc: ap({
      selector: { matchLabels: { app: 'payments' } },
      action: 'DENY',
      rules: [
        {
          from: [
            {
              source: {
                principals: ['cluster.local/ns/default/sa/orders'],
                notPrincipals: ['*'],
                namespaces: ['default'],
                notNamespaces: ['test'],
                ipBlocks: ['10.0.0.0/8', '192.168.1.7'],
                notIpBlocks: ['2001:db8::/32'],
              },
            },
          ],
          to: [
            {
              operation: {
                hosts: ['payments'],
                notHosts: ['admin'],
                ports: ['8080'],
                notPorts: ['9090'],
                methods: ['DELETE'],
                notMethods: ['GET'],
                paths: ['/admin/*', '*/debug'],
                notPaths: ['/health'],
              },
            },
          ],
          when: [
            { key: 'request.headers[X-Tenant]', values: ['a', 'b'] },
            { key: 'source.ip', notValues: ['10.1.0.0/16'] },
          ],
        },
      ],
    }),
  },
  {
    name: 'AuthorizationPolicy: CUSTOM with a provider',
    doc: ap({ action: 'CUSTOM', provider: { name: 'ext-authz' }, rules: [{}] }),
  },
  // PeerAuthentication
  {
    name: 'PeerAuthentication: STRICT, a port PERMISSIVE, mode defaults to UNSET',
    doc: pa({
      selector: { matchLabels: { app: 'payments' } },
      mtls: {},
      portLevelMtls: { '8080': { mode: 'PERMISSIVE' } },
    }),
    check: (r) =>
      assert.deepEqual(r.spec, {
        selector: { matchLabels: { app: 'payments' } },
        mtls: { mode: 'UNSET' },
        portLevelMtls: { '8080': { mode: 'PERMISSIVE' } },
      }),
  },
  // meshwork.dev/v1
  {
    name: 'LocalRateLimit: inbound, by selector',
    doc: lrl({ selector: { matchLabels: { app: 'a' } }, tokenBucket: bucket }),
  },
  {
    name: 'LocalRateLimit: outbound, by host, fillInterval at its 50ms floor',
    doc: lrl({
      host: 'payments',
      tokenBucket: { ...bucket, tokensPerFill: 100, fillInterval: '50ms' },
    }),
  },
  {
    name: 'ResponseCache: defaults filled in',
    doc: doc('ResponseCache', { host: 'catalog' }),
    check: (r) =>
      assert.deepEqual(r.spec, { host: 'catalog', maxEntries: 1000, maxBodyBytes: 1048576 }),
  },
  {
    name: 'ResponseCache: every field',
    doc: doc('ResponseCache', {
      host: 'catalog',
      maxEntries: 100000,
      maxBodyBytes: 16777216,
      defaultTtl: '30s',
    }),
  },
  {
    name: 'RetryBudget: defaults filled in',
    doc: doc('RetryBudget', { host: 'payments' }),
    check: (r) =>
      assert.deepEqual(r.spec, {
        host: 'payments',
        budgetPercent: 20,
        minRetriesPerSecond: 10,
        ttl: '10s',
      }),
  },
  {
    name: 'RetryBudget: every field',
    doc: doc('RetryBudget', {
      host: 'payments',
      budgetPercent: 12.5,
      minRetriesPerSecond: 0,
      ttl: '1m',
    }),
  },
];

const BAD: readonly Bad[] = [
  // Envelope
  { name: 'not a map', doc: ['x'], problems: [['', 'must be a map']] },
  { name: 'null', doc: null, problems: [['', 'must be a map']] },
  {
    name: 'apiVersion of another group',
    doc: { ...route1(), apiVersion: 'security.istio.io/v1' },
    problems: [
      ['apiVersion', 'must be one of networking.istio.io/v1, networking.istio.io/v1beta1'],
    ],
  },
  {
    name: 'apiVersion missing',
    doc: { ...route1(), apiVersion: undefined },
    problems: [['apiVersion', 'required']],
  },
  {
    name: 'unknown kind, and the envelope still checked',
    doc: {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'Bad_Name' },
      spec: {},
    },
    problems: [
      ['kind', 'unknown kind: the supported kinds are VirtualService, DestinationRule'],
      ['metadata.name', 'DNS subdomain'],
    ],
  },
  {
    name: 'a kind in the wrong case',
    doc: { ...route1(), kind: 'virtualservice' },
    problems: [['kind', 'unknown kind: kinds are case-sensitive; write VirtualService']],
  },
  {
    name: 'kind missing',
    doc: { ...route1(), kind: undefined },
    problems: [['kind', 'required']],
  },
  {
    name: 'metadata and spec missing, an unknown top-level field',
    doc: { apiVersion: 'meshwork.dev/v1', kind: 'RetryBudget', status: {} },
    problems: [
      ['metadata', 'required'],
      ['spec', 'required'],
      ['status', 'unknown field'],
    ],
  },
  {
    name: 'metadata: name too long, namespace not a label, bad labels and annotations, unknown field',
    doc: {
      ...route1(),
      metadata: {
        name: 'a'.repeat(254),
        namespace: 'My.Namespace',
        labels: { 'bad key!': 'x', ok: 'not ok!' },
        annotations: { note: 7 },
        uid: '123',
      },
    },
    problems: [
      ['metadata.name', 'at most 253 characters'],
      ['metadata.namespace', 'DNS label'],
      ['metadata.labels.bad key!', 'label key'],
      ['metadata.labels.ok', 'label value'],
      ['metadata.annotations.note', 'must be a string'],
      ['metadata.uid', 'unknown field'],
    ],
  },
  {
    name: 'a __proto__ key',
    doc: JSON.parse(
      '{"apiVersion":"meshwork.dev/v1","kind":"RetryBudget","metadata":{"name":"a","labels":{"__proto__":{}}},"spec":{"host":"x"}}',
    ),
    problems: [['metadata.labels.__proto__', 'must not be a key']],
  },
  // VirtualService
  {
    name: 'VirtualService: weights sum to 90',
    doc: vs({
      http: [
        {
          route: [
            { destination: { host: 'payments', subset: 'v1' }, weight: 80 },
            { destination: { host: 'payments', subset: 'v2' }, weight: 10 },
          ],
        },
      ],
    }),
    problems: [['spec.http[0].route', 'sum to 90: they must sum to 100']],
  },
  {
    name: 'VirtualService: a weight out of range, another not whole',
    doc: vs({
      http: [
        {
          route: [
            { destination: { host: 'payments', subset: 'v1' }, weight: 150 },
            { destination: { host: 'payments', subset: 'v2' }, weight: 10.5 },
          ],
        },
      ],
    }),
    problems: [
      ['spec.http[0].route[0].weight', 'must be an integer 0..100'],
      ['spec.http[0].route[1].weight', 'must be an integer 0..100'],
    ],
  },
  {
    name: 'VirtualService: no http routes, a route without destinations, another without route',
    doc: vs({ http: [] }),
    problems: [['spec.http', 'must not be empty']],
  },
  {
    name: 'VirtualService: a route with no destination, another with no route list',
    doc: vs({ http: [{ route: [] }, { timeout: '1s' }] }),
    problems: [
      ['spec.http[0].route', 'must not be empty'],
      ['spec.http[1].route', 'required'],
    ],
  },
  {
    name: 'VirtualService: destination host missing, upper-case, wildcard; bad subset and port',
    doc: vs({
      http: [
        {
          route: [
            { destination: { subset: 'v1' }, weight: 25 },
            { destination: { host: 'Payments' }, weight: 25 },
            { destination: { host: '*.example.com' }, weight: 25 },
            { destination: { host: 'payments', subset: 'V_1', port: { number: 0 } }, weight: 25 },
          ],
        },
      ],
    }),
    problems: [
      ['spec.http[0].route[0].destination.host', 'required'],
      ['spec.http[0].route[1].destination.host', 'must be a host'],
      ['spec.http[0].route[2].destination.host', 'must be a host'],
      ['spec.http[0].route[3].destination.subset', 'DNS label'],
      ['spec.http[0].route[3].destination.port.number', 'must be an integer 1..65535'],
    ],
  },
  {
    name: 'VirtualService: no hosts, and destinations naming several',
    doc: doc('VirtualService', {
      http: [
        { route: [{ destination: { host: 'payments' } }] },
        { route: [{ destination: { host: 'orders' } }] },
      ],
    }),
    problems: [['spec.hosts', 'several hosts (payments, orders)']],
  },
  {
    name: 'VirtualService: no hosts and no destination host',
    doc: doc('VirtualService', { http: [{ route: [{ destination: {} }] }] }),
    problems: [
      ['spec.hosts', 'no route destination names a host'],
      ['spec.http[0].route[0].destination.host', 'required'],
    ],
  },
  {
    name: 'VirtualService: bad hosts and gateways',
    doc: vs({
      hosts: ['payments', 'payments', 'a..b'],
      gateways: ['a/b/c', 'Mesh'],
      http: [{ route: [{ destination: { host: 'payments' } }] }],
    }),
    problems: [
      ['spec.hosts[1]', 'duplicate'],
      ['spec.hosts[2]', 'must be a host'],
      ['spec.gateways[0]', 'namespace/name'],
      ['spec.gateways[1]', 'namespace/name'],
    ],
  },
  {
    name: 'VirtualService: regexes RE2 refuses, two match kinds, a query prefix',
    doc: route1({
      match: [
        {
          uri: { regex: '(' },
          authority: { regex: '^(?=api)' },
          method: { exact: 'GET', prefix: 'G' },
          queryParams: { q: { prefix: 'x' } },
          headers: { 'x-a': { regex: '\\1' } },
        },
      ],
    }),
    problems: [
      ['spec.http[0].match[0].uri.regex', 'not an RE2 regular expression'],
      ['spec.http[0].match[0].authority.regex', 'not an RE2 regular expression'],
      [
        'spec.http[0].match[0].method',
        'must set only one of exact, prefix, regex (got exact, prefix)',
      ],
      ['spec.http[0].match[0].queryParams.q.prefix', 'not supported here'],
      ['spec.http[0].match[0].queryParams.q', 'must set one of exact, regex'],
      ['spec.http[0].match[0].headers.x-a.regex', 'not an RE2 regular expression'],
    ],
  },
  {
    name: 'VirtualService: a regex too long',
    doc: route1({ match: [{ uri: { regex: 'a'.repeat(1025) } }] }),
    problems: [['spec.http[0].match[0].uri.regex', 'at most 1024 characters']],
  },
  {
    name: 'VirtualService: an empty string match',
    doc: route1({ match: [{ uri: {} }] }),
    problems: [['spec.http[0].match[0].uri', 'must set one of exact, prefix, regex']],
  },
  {
    name: 'VirtualService: retries out of range, bad perTryTimeout and retryOn',
    doc: route1({ retries: { attempts: 11, perTryTimeout: '5', retryOn: '5xx,foo,600' } }),
    problems: [
      ['spec.http[0].retries.attempts', 'must be an integer 0..10'],
      ['spec.http[0].retries.perTryTimeout', 'must be a duration like'],
      ['spec.http[0].retries.retryOn', 'unknown retry condition "foo", "600"'],
    ],
  },
  {
    name: 'VirtualService: retries without attempts',
    doc: route1({ retries: { perTryTimeout: '1s' } }),
    problems: [['spec.http[0].retries.attempts', 'required']],
  },
  {
    name: 'VirtualService: a zero timeout, one of two days, one without a unit',
    doc: vs({
      http: [
        { route: [{ destination: { host: 'payments' } }], timeout: '0s' },
        { route: [{ destination: { host: 'payments' } }], timeout: '48h' },
        { route: [{ destination: { host: 'payments' } }], timeout: 10 },
      ],
    }),
    problems: [
      ['spec.http[0].timeout', 'must be more than 0'],
      ['spec.http[1].timeout', 'must be at most 24h'],
      ['spec.http[2].timeout', 'must be a duration like "100ms"'],
    ],
  },
  {
    name: 'VirtualService: fault percentages and status out of range, an empty fault',
    doc: vs({
      http: [
        {
          route: [{ destination: { host: 'payments' } }],
          fault: {
            delay: { fixedDelay: '1s', percentage: { value: 101 } },
            abort: { httpStatus: 700, percentage: { value: -1 } },
          },
        },
        { route: [{ destination: { host: 'payments' } }], fault: {} },
        {
          route: [{ destination: { host: 'payments' } }],
          fault: { delay: { percentage: { value: 1 } } },
        },
      ],
    }),
    problems: [
      ['spec.http[0].fault.delay.percentage.value', 'must be 0..100'],
      ['spec.http[0].fault.abort.httpStatus', 'must be an integer 200..599'],
      ['spec.http[0].fault.abort.percentage.value', 'must be 0..100'],
      ['spec.http[1].fault', 'must set delay or abort'],
      ['spec.http[2].fault.delay.fixedDelay', 'required'],
    ],
  },
  {
    name: 'VirtualService: mirrorPercentage without mirror, a bad mirror host, a bad rewrite',
    doc: vs({
      http: [
        { route: [{ destination: { host: 'payments' } }], mirrorPercentage: { value: 10 } },
        {
          route: [{ destination: { host: 'payments' } }],
          mirror: { host: 'Shadow' },
          mirrorPercentage: { value: 200 },
          rewrite: { uri: 'v2/' },
        },
        { route: [{ destination: { host: 'payments' } }], rewrite: {} },
        {
          route: [{ destination: { host: 'payments' } }],
          mirror: { host: 'a' },
          mirrorPercentage: 5,
        },
      ],
    }),
    problems: [
      ['spec.http[0].mirrorPercentage', 'needs mirror'],
      ['spec.http[1].mirror.host', 'must be a host'],
      ['spec.http[1].mirrorPercentage.value', 'must be 0..100'],
      ['spec.http[1].rewrite.uri', 'must start with /'],
      ['spec.http[2].rewrite', 'must set uri or authority'],
      ['spec.http[3].mirrorPercentage', 'must be a percentage: { value: 0..100 }'],
    ],
  },
  {
    name: 'VirtualService: header operations with bad names, values and duplicates',
    doc: route1({
      headers: {
        request: { set: { 'bad name': 'x', 'x-ok': 'a\r\nInjected: 1' }, remove: ['x-a', 'X-A'] },
        response: { add: { 'X-Dup': '1', 'x-dup': '2' } },
      },
    }),
    problems: [
      ['spec.http[0].headers.request.set.bad name', 'must be an HTTP token'],
      ['spec.http[0].headers.request.set.x-ok', 'must not contain CR, LF or NUL'],
      ['spec.http[0].headers.request.remove[1]', 'duplicate'],
      ['spec.http[0].headers.response.add.x-dup', 'duplicate header name'],
    ],
  },
  {
    name: 'VirtualService: unknown fields, and Istio fields Meshwork does not implement',
    doc: vs({
      tcp: [],
      http: [{ route: [{ destination: { host: 'payments' } }], corsPolicy: {}, retry: {} }],
    }),
    problems: [
      ['spec.tcp', 'not supported: an Istio field Meshwork does not implement'],
      ['spec.http[0].corsPolicy', 'not supported'],
      ['spec.http[0].retry', 'unknown field'],
    ],
  },
  {
    name: 'VirtualService: wrong types',
    doc: vs({
      hosts: 'payments',
      http: [{ route: [{ destination: { host: 1 }, weight: '50' }, 'x'] }],
    }),
    problems: [
      ['spec.hosts', 'must be a list'],
      ['spec.http[0].route[0].destination.host', 'must be a string'],
      ['spec.http[0].route[0].weight', 'must be a number'],
      ['spec.http[0].route[1]', 'must be a map of fields'],
    ],
  },
  {
    name: 'VirtualService: too many routes (checked before any is read)',
    doc: vs({ http: Array.from({ length: 257 }, () => ({ route: 'x' })) }),
    problems: [['spec.http', 'must have at most 256 entries']],
  },
  // DestinationRule
  {
    name: 'DestinationRule: host missing; duplicate and bad subset names; labels no instance has',
    doc: doc('DestinationRule', {
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v1' },
        { name: 'V2' },
        { name: 'v3', labels: { 'app.kubernetes.io/version': 'v3' } },
      ],
    }),
    problems: [
      ['spec.host', 'required'],
      ['spec.subsets[2].name', 'DNS label'],
      ['spec.subsets[3].labels.app.kubernetes.io/version', 'instance meta key'],
      ['spec.subsets[1].name', 'duplicate: "v1" is listed twice'],
    ],
  },
  {
    name: 'DestinationRule: tls modes the mesh CA cannot serve, and unknown tls fields (issue 20)',
    doc: dr({
      trafficPolicy: { tls: { mode: 'SIMPLE' } },
      subsets: [
        { name: 'a', trafficPolicy: { tls: { mode: 'MUTUAL' } } },
        { name: 'b', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL', caCertificates: '/x' } } },
      ],
    }),
    problems: [
      ['spec.trafficPolicy.tls.mode', 'must be DISABLE or ISTIO_MUTUAL'],
      ['spec.subsets[0].trafficPolicy.tls.mode', 'must be DISABLE or ISTIO_MUTUAL'],
      ['spec.subsets[1].trafficPolicy.tls.caCertificates', ''],
    ],
  },
  {
    name: 'DestinationRule: load balancers with both, neither, two hash keys',
    doc: dr({
      trafficPolicy: {
        loadBalancer: { simple: 'ROUND_ROBIN', consistentHash: { useSourceIp: true } },
      },
      subsets: [
        { name: 'a', trafficPolicy: { loadBalancer: {} } },
        {
          name: 'b',
          trafficPolicy: {
            loadBalancer: { consistentHash: { httpHeaderName: 'x', useSourceIp: true } },
          },
        },
        {
          name: 'c',
          trafficPolicy: {
            loadBalancer: {
              consistentHash: { useSourceIp: false, ringHash: {}, maglev: { tableSize: 100 } },
            },
          },
        },
        { name: 'd', trafficPolicy: { loadBalancer: { simple: 'FASTEST' } } },
      ],
    }),
    problems: [
      ['spec.trafficPolicy.loadBalancer', 'must set only one of simple, consistentHash'],
      ['spec.subsets[0].trafficPolicy.loadBalancer', 'must set one of simple, consistentHash'],
      [
        'spec.subsets[1].trafficPolicy.loadBalancer.consistentHash',
        'must set only one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName',
      ],
      ['spec.subsets[2].trafficPolicy.loadBalancer.consistentHash.useSourceIp', 'must be true'],
      ['spec.subsets[2].trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', 'prime'],
      ['spec.subsets[2].trafficPolicy.loadBalancer.consistentHash', 'only one of ringHash, maglev'],
      [
        'spec.subsets[3].trafficPolicy.loadBalancer.simple',
        'must be one of UNSPECIFIED, ROUND_ROBIN',
      ],
    ],
  },
  {
    name: 'DestinationRule: connection pool and outlier detection out of range',
    doc: dr({
      trafficPolicy: {
        connectionPool: {
          tcp: { maxConnections: 0 },
          http: { idleTimeout: 'soon', maxRetries: -1 },
        },
        outlierDetection: { maxEjectionPercent: 150, interval: '0ms', consecutive5xxErrors: 1.5 },
      },
    }),
    problems: [
      ['spec.trafficPolicy.connectionPool.tcp.maxConnections', 'must be an integer 1..'],
      ['spec.trafficPolicy.connectionPool.http.idleTimeout', 'must be a duration'],
      ['spec.trafficPolicy.connectionPool.http.maxRetries', 'must be an integer 1..'],
      ['spec.trafficPolicy.outlierDetection.consecutive5xxErrors', 'must be an integer 0..'],
      ['spec.trafficPolicy.outlierDetection.interval', 'must be more than 0'],
      ['spec.trafficPolicy.outlierDetection.maxEjectionPercent', 'must be an integer 0..100'],
    ],
  },
  {
    name: 'DestinationRule: problems inside circuitBreaker are reported where the document wrote them',
    doc: dr({
      subsets: [
        {
          name: 'v1',
          trafficPolicy: { circuitBreaker: { consecutiveErrors: -1, interval: 'x', foo: 1 } },
        },
      ],
    }),
    problems: [
      ['spec.subsets[0].trafficPolicy.circuitBreaker.consecutiveErrors', 'must be an integer 0..'],
      ['spec.subsets[0].trafficPolicy.circuitBreaker.interval', 'must be a duration'],
      ['spec.subsets[0].trafficPolicy.circuitBreaker.foo', 'unknown field'],
    ],
  },
  {
    name: 'DestinationRule: circuitBreaker beside outlierDetection',
    doc: dr({
      trafficPolicy: {
        outlierDetection: { consecutive5xxErrors: 1 },
        circuitBreaker: { consecutiveErrors: 2 },
      },
      subsets: [
        {
          name: 'v1',
          trafficPolicy: { circuitBreaker: { consecutiveErrors: 2, consecutive5xxErrors: 3 } },
        },
      ],
    }),
    problems: [
      [
        'spec.trafficPolicy.circuitBreaker',
        'old name of outlierDetection: set only outlierDetection',
      ],
      [
        'spec.subsets[0].trafficPolicy.circuitBreaker.consecutiveErrors',
        'old name of consecutive5xxErrors',
      ],
    ],
  },
  // ServiceEntry
  {
    name: 'ServiceEntry: hosts and ports missing',
    doc: doc('ServiceEntry', { resolution: 'DNS' }),
    problems: [
      ['spec.hosts', 'required'],
      ['spec.ports', 'required'],
    ],
  },
  {
    name: 'ServiceEntry: ports out of range, duplicated, an unknown protocol; bad enums',
    doc: se({
      hosts: [],
      ports: [
        { number: 70000, name: 'a' },
        { number: 80, name: 'http', protocol: 'MONGO' },
        { number: 80, name: 'http' },
      ],
      resolution: 'MAGIC',
      location: 'OUTSIDE',
    }),
    problems: [
      ['spec.hosts', 'must not be empty'],
      ['spec.ports[0].number', 'must be an integer 1..65535'],
      ['spec.ports[1].protocol', 'must be one of HTTP, HTTPS, HTTP2, GRPC, TCP, TLS'],
      ['spec.ports[2].number', 'duplicate: 80 is listed twice'],
      ['spec.ports[2].name', 'duplicate: "http" is listed twice'],
      ['spec.location', 'must be one of MESH_EXTERNAL, MESH_INTERNAL'],
      ['spec.resolution', 'must be one of NONE, STATIC, DNS, DNS_ROUND_ROBIN'],
    ],
  },
  {
    name: 'ServiceEntry: duplicate port names',
    doc: se({
      ports: [
        { number: 80, name: 'web' },
        { number: 81, name: 'web' },
      ],
    }),
    problems: [['spec.ports[1].name', 'duplicate']],
  },
  {
    name: 'ServiceEntry: STATIC without endpoints',
    doc: se({ resolution: 'STATIC' }),
    problems: [['spec.endpoints', 'required when resolution is STATIC']],
  },
  {
    name: 'ServiceEntry: STATIC with a host-name endpoint and an undeclared port name',
    doc: se({
      resolution: 'STATIC',
      endpoints: [
        { address: '10.0.0.1', ports: { grpc: 9000 } },
        { address: 'db.internal' },
        { address: '10.0.0.300' },
      ],
    }),
    problems: [
      ['spec.endpoints[0].ports.grpc', 'must name a port of spec.ports (https)'],
      ['spec.endpoints[1].address', 'must be an IP address when resolution is STATIC'],
      ['spec.endpoints[2].address', 'must be an IP address when resolution is STATIC'],
    ],
  },
  {
    name: 'ServiceEntry: NONE with endpoints',
    doc: se({ endpoints: [{ address: '10.0.0.1' }] }),
    problems: [['spec.endpoints', 'must be absent when resolution is NONE']],
  },
  {
    name: 'ServiceEntry: DNS_ROUND_ROBIN with two endpoints',
    doc: se({
      resolution: 'DNS_ROUND_ROBIN',
      endpoints: [{ address: 'a.example.com' }, { address: 'b.example.com' }],
    }),
    problems: [['spec.endpoints', 'at most one endpoint when resolution is DNS_ROUND_ROBIN']],
  },
  {
    name: 'ServiceEntry: DNS of a wildcard without endpoints; an Istio-only field',
    doc: se({
      hosts: ['api.example.com', '*.example.com'],
      resolution: 'DNS',
      addresses: ['1.2.3.4'],
    }),
    problems: [
      ['spec.hosts[1]', 'must not be a wildcard when resolution is DNS without endpoints'],
      ['spec.addresses', 'not supported'],
    ],
  },
  // Sidecar
  {
    name: 'Sidecar: a bad mode, an empty selector, egress',
    doc: doc('Sidecar', {
      workloadSelector: { matchLabels: {} },
      outboundTrafficPolicy: { mode: 'DENY' },
      egress: [],
    }),
    problems: [
      ['spec.workloadSelector.matchLabels', 'must hold at least one label'],
      ['spec.outboundTrafficPolicy.mode', 'must be one of ALLOW_ANY, REGISTRY_ONLY'],
      ['spec.egress', 'not supported'],
    ],
  },
  {
    name: 'Sidecar: outboundTrafficPolicy without mode',
    doc: doc('Sidecar', { outboundTrafficPolicy: {} }),
    problems: [['spec.outboundTrafficPolicy.mode', 'required']],
  },
  {
    name: 'Sidecar: both labels and matchLabels',
    doc: doc('Sidecar', { workloadSelector: { labels: { a: 'b' }, matchLabels: { a: 'b' } } }),
    problems: [['spec.workloadSelector', 'must set only one of labels, matchLabels']],
  },
  // AuthorizationPolicy
  {
    name: 'AuthorizationPolicy: CUSTOM without a provider',
    doc: ap({ action: 'CUSTOM' }),
    problems: [['spec.provider', 'required when action is CUSTOM']],
  },
  {
    name: 'AuthorizationPolicy: a provider without CUSTOM, an unknown action',
    doc: ap({ provider: { name: 'x' } }),
    problems: [['spec.provider', 'only for action CUSTOM (action is ALLOW)']],
  },
  {
    name: 'AuthorizationPolicy: an unknown action',
    doc: ap({ action: 'PERMIT' }),
    problems: [['spec.action', 'must be one of ALLOW, DENY, AUDIT, CUSTOM']],
  },
  {
    name: 'AuthorizationPolicy: rules with lower-case methods, empty source, bad blocks, ports, keys',
    doc: ap({
      rules: [
        {
          from: [
            { source: {} },
            { source: { ipBlocks: ['10.0.0.0/33', 'x'], requestPrincipals: ['*'] } },
          ],
          to: [{ operation: { methods: ['get'], ports: ['0', 'http'], paths: ['admin'] } }],
          when: [{ key: 'request.auth.claims[iss]', values: ['x'] }, { key: 'source.ip' }],
        },
      ],
    }),
    problems: [
      ['spec.rules[0].from[0].source', 'must set at least one field'],
      ['spec.rules[0].from[1].source.ipBlocks[0]', 'CIDR'],
      ['spec.rules[0].from[1].source.ipBlocks[1]', 'CIDR'],
      ['spec.rules[0].from[1].source.requestPrincipals', 'not supported'],
      ['spec.rules[0].to[0].operation.methods[0]', 'upper-case HTTP method'],
      ['spec.rules[0].to[0].operation.ports[0]', 'port number 1..65535'],
      ['spec.rules[0].to[0].operation.ports[1]', 'port number 1..65535'],
      ['spec.rules[0].to[0].operation.paths[0]', 'must start with /'],
      ['spec.rules[0].when[0].key', 'must be one of request.headers[<name>], source.ip'],
      ['spec.rules[0].when[1]', 'must set values or notValues'],
    ],
  },
  // PeerAuthentication
  {
    name: 'PeerAuthentication: port-level mTLS without a selector, a bad port key and mode',
    doc: pa({ mtls: { mode: 'ON' }, portLevelMtls: { http: { mode: 'STRICT' }, '8080': {} } }),
    problems: [
      ['spec.mtls.mode', 'must be one of UNSET, DISABLE, PERMISSIVE, STRICT'],
      ['spec.portLevelMtls.http', 'port number'],
      ['spec.portLevelMtls', 'needs a selector'],
    ],
  },
  // LocalRateLimit
  {
    name: 'LocalRateLimit: both selector and host',
    doc: lrl({ selector: { matchLabels: { app: 'a' } }, host: 'a', tokenBucket: bucket }),
    problems: [['spec', 'must set exactly one of selector']],
  },
  {
    name: 'LocalRateLimit: neither; a bucket refilling more than it holds, too fast',
    doc: lrl({ tokenBucket: { maxTokens: 5, tokensPerFill: 10, fillInterval: '10ms' } }),
    problems: [
      ['spec', 'must set exactly one of selector'],
      ['spec.tokenBucket.tokensPerFill', 'must be at most maxTokens (5)'],
      ['spec.tokenBucket.fillInterval', 'must be at least 50ms'],
    ],
  },
  {
    name: 'LocalRateLimit: a bucket without tokens; an Istio apiVersion',
    doc: {
      ...lrl({ host: 'a', tokenBucket: { maxTokens: 0, tokensPerFill: 0 } }),
      apiVersion: 'networking.istio.io/v1',
    },
    problems: [
      ['apiVersion', 'must be meshwork.dev/v1 for LocalRateLimit'],
      ['spec.tokenBucket.maxTokens', 'must be an integer 1..'],
      ['spec.tokenBucket.tokensPerFill', 'must be an integer 1..'],
      ['spec.tokenBucket.fillInterval', 'required'],
    ],
  },
  // ResponseCache
  {
    name: 'ResponseCache: host missing, caps exceeded',
    doc: doc('ResponseCache', { maxEntries: 100001, maxBodyBytes: 0, defaultTtl: '-1s' }),
    problems: [
      ['spec.host', 'required'],
      ['spec.maxEntries', 'must be an integer 1..100000'],
      ['spec.maxBodyBytes', 'must be an integer 1..16777216'],
      ['spec.defaultTtl', 'must be a duration'],
    ],
  },
  // RetryBudget
  {
    name: 'RetryBudget: percent, rate and ttl out of range',
    doc: doc('RetryBudget', {
      host: 'payments',
      budgetPercent: 120,
      minRetriesPerSecond: -1,
      ttl: '500ms',
    }),
    problems: [
      ['spec.budgetPercent', 'must be 0..100'],
      ['spec.minRetriesPerSecond', 'must be an integer 0..10000'],
      ['spec.ttl', 'must be at least 1s'],
    ],
  },
  {
    name: 'RetryBudget: a ttl over a minute',
    doc: doc('RetryBudget', { host: 'payments', ttl: '2m' }),
    problems: [['spec.ttl', 'must be at most 1m']],
  },
];

describe('parseMeshResource', () => {
  for (const c of GOOD) {
    it(`takes ${c.name}`, () => {
      const r = parseMeshResource(c.doc);
      const resource = ok(r);
      c.check?.(resource);
      const warnings = r.ok ? r.warnings : [];
      assert.equal(warnings.length, c.warnings?.length ?? 0, JSON.stringify(warnings));
      c.warnings?.forEach((w, i) => assert.ok(warnings[i]?.startsWith(w), `${warnings[i]} / ${w}`));
    });
  }

  for (const c of BAD) {
    it(`refuses ${c.name}`, () => {
      const r = parseMeshResource(c.doc);
      assert.ok(!r.ok, 'taken');
      const got = r.problems.map((p) => `${p.path}: ${p.reason}`);
      assert.deepEqual(
        [...new Set(r.problems.map((p) => p.path))].sort(),
        [...new Set(c.problems.map(([path]) => path))].sort(),
        got.join('\n'),
      );
      for (const [path, reason] of c.problems) {
        assert.ok(
          r.problems.some((p) => p.path === path && p.reason.includes(reason)),
          `no "${path}: ...${reason}..." in\n${got.join('\n')}`,
        );
      }
    });
  }

  it('covers every kind with good and bad documents', () => {
    const kindOf = (d: unknown) => (d as { kind?: unknown } | null)?.kind;
    for (const kind of MESH_KINDS) {
      assert.ok(
        GOOD.some((c) => kindOf(c.doc) === kind),
        `no good ${kind}`,
      );
      assert.ok(
        BAD.some((c) => kindOf(c.doc) === kind),
        `no bad ${kind}`,
      );
    }
  });

  it('reports every problem of a document, not only the first', () => {
    const r = parseMeshResource({
      apiVersion: 'networking.istio.io/v2',
      kind: 'VirtualService',
      metadata: { name: 'x', namespace: 'A' },
      spec: {
        hosts: ['payments'],
        http: [
          {
            route: [
              { destination: { host: 'payments', subset: 'v1' }, weight: 70 },
              { destination: { host: 'payments', subset: 'v2' }, weight: 20 },
            ],
          },
          { route: [{ destination: { host: 'payments' } }], timeout: 'x', fault: {} },
        ],
      },
    });
    assert.ok(!r.ok);
    assert.deepEqual(
      r.problems.map((p) => p.path),
      [
        'apiVersion',
        'metadata.namespace',
        'spec.http[0].route',
        'spec.http[1].timeout',
        'spec.http[1].fault',
      ],
    );
  });

  it("bounds the compile work of a resource's regexes, naming the first one past the budget", () => {
    const many = (pattern: (i: number) => string, n: number) =>
      vs({
        http: [
          {
            match: Array.from({ length: n }, (_, i) => ({ uri: { regex: pattern(i) } })),
            route: [{ destination: { host: 'payments' } }],
          },
        ],
      });
    // Large programs from short patterns: refused once their sum passes the budget.
    const size = userRegexSize('a{0,900}0');
    assert.equal(typeof size, 'number');
    const first = Math.ceil(MESH_LIMITS.maxRegexInstructions / (size as number));
    const r = parseMeshResource(many((i) => `a{0,900}${i % 10}`, 32));
    assert.ok(!r.ok);
    assert.deepEqual(r.problems, [
      {
        path: `spec.http[0].match[${first}].uri.regex`,
        reason: `not compiled: the regexes of this resource come to more than ${MESH_LIMITS.maxRegexInstructions} RE2 instructions (each counts at least 64); use fewer or smaller ones`,
      },
    ]);
    // Small ones: each counts 64, so 512 fit.
    ok(parseMeshResource(many((i) => `^/v${i}/`, 32)));
  });

  it('leaves the document it is given as it was', () => {
    const d = doc('DestinationRule', {
      host: 'payments',
      trafficPolicy: { circuitBreaker: { consecutiveErrors: 3 } },
    });
    const before = structuredClone(d);
    ok(parseMeshResource(d));
    assert.deepEqual(d, before);
  });
});

describe('isMeshDocument', () => {
  it('is true of a document with string apiVersion and kind, whatever their values', () => {
    assert.equal(isMeshDocument(route1()), true);
    assert.equal(isMeshDocument({ apiVersion: 'x', kind: 'y' }), true);
    assert.equal(isMeshDocument({ service: 'payments', address: '10.0.0.1', port: 80 }), false);
    assert.equal(isMeshDocument({ apiVersion: 'v1' }), false);
    assert.equal(isMeshDocument({ apiVersion: 1, kind: 'VirtualService' }), false);
    assert.equal(isMeshDocument(null), false);
    assert.equal(isMeshDocument([{ apiVersion: 'x', kind: 'y' }]), false);
    assert.equal(isMeshDocument('apiVersion: x'), false);
  });
});

/** Every document of a multi-document YAML file, parsed. */
function parseFile(path: string): ParseResult[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((d) => {
    assert.deepEqual(d.errors, [], `${path}: YAML errors`);
    return parseMeshResource(d.toJS());
  });
}

describe('the seed 003 YAML (issue 18: it applies unchanged)', () => {
  const results = parseFile('test/fixtures/seed-003-mesh.yaml');

  it('parses every document, with warnings naming the Istio spelling', () => {
    assert.deepEqual(
      results.map((r) => (r.ok ? `${r.resource.kind}/${r.resource.metadata.name}` : r.problems)),
      [
        'VirtualService/usuario-service-routing',
        'AuthorizationPolicy/usuario-service-authz',
        'PeerAuthentication/default',
        'AuthorizationPolicy/usuario-service-policy',
        'VirtualService/usuario-service-canary',
        'DestinationRule/usuario-service-subsets',
      ],
    );
    const warnings = results.map((r) => (r.ok ? r.warnings.map((w) => w.split(': ')[0]) : []));
    assert.deepEqual(warnings, [
      ['spec.http[0].route[0].weight', 'spec.http[1].route[0].weight', 'spec.hosts'],
      [],
      [],
      [],
      ['spec.http[0].route[0].weight', 'spec.http[1].route[0].weight', 'spec.hosts'],
      [
        'spec.subsets[1].trafficPolicy.circuitBreaker',
        'spec.subsets[1].trafficPolicy.circuitBreaker.consecutiveErrors',
      ],
    ]);
    const all = results.flatMap((r) => (r.ok ? r.warnings : []));
    assert.ok(
      all.some(
        (w) =>
          w.includes('ignored') && w.includes("only destination gets all of that route's traffic"),
      ),
    );
    assert.ok(all.some((w) => w.includes('taken as [usuario-service]')));
    assert.ok(all.some((w) => w.includes('read as outlierDetection')));
  });

  it('normalises to Istio spellings the compiler reads', () => {
    const [routing, , , , , rule] = results.map((r) => ok(r));
    const vsSpec = routing?.spec as VirtualServiceSpec;
    assert.deepEqual(vsSpec.hosts, ['usuario-service']);
    assert.deepEqual(vsSpec.http[1]?.route, [
      { destination: { host: 'usuario-service', subset: 'v1' } },
    ]);
    assert.deepEqual(
      (rule?.spec as DestinationRuleSpec).subsets?.[1]?.trafficPolicy?.outlierDetection,
      {
        consecutive5xxErrors: 5,
        interval: '30s',
        baseEjectionTime: '30s',
        maxEjectionPercent: 50,
      },
    );
  });

  it('has no dangling reference as a set', () => {
    assert.deepEqual(checkReferences(results.map((r) => ok(r))), []);
  });
});

describe('examples/mesh-resources (the examples docs/mesh.md includes)', () => {
  const dir = 'examples/mesh-resources';
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));

  it('has examples', () => assert.ok(files.length >= 4, files.join(', ')));

  it('are shown whole in docs/mesh.md', () => {
    const docs = readFileSync('docs/mesh.md', 'utf8');
    for (const file of files) {
      const text = readFileSync(join(dir, file), 'utf8');
      assert.ok(
        docs.includes(`\`\`\`yaml\n${text}\`\`\``),
        `docs/mesh.md does not show ${file} as it is`,
      );
    }
  });

  for (const file of files) {
    it(`${file}: every document parses without warnings, and no reference dangles`, () => {
      const resources = parseFile(join(dir, file)).map((r) => {
        const resource = ok(r);
        assert.deepEqual(r.ok ? r.warnings : [], [], file);
        return resource;
      });
      assert.ok(resources.length > 0);
      assert.deepEqual(checkReferences(resources), []);
    });
  }
});

describe('checkReferences', () => {
  const rule = (namespace: string, host: string, subsets: readonly string[]) =>
    ok(
      parseMeshResource(
        doc(
          'DestinationRule',
          { host, subsets: subsets.map((name) => ({ name, labels: { version: name } })) },
          { name: `dr-${subsets.join('-')}`, namespace },
        ),
      ),
    );
  const routes = (namespace: string, host: string, subset: string, mirrorSubset?: string) =>
    ok(
      parseMeshResource(
        doc(
          'VirtualService',
          {
            hosts: [host],
            http: [
              {
                route: [{ destination: { host, subset } }],
                ...(mirrorSubset === undefined ? {} : { mirror: { host, subset: mirrorSubset } }),
              },
            ],
          },
          { name: 'vs', namespace },
        ),
      ),
    );

  it('finds a subset in a DestinationRule of the host, in any spelling and namespace', () => {
    assert.deepEqual(
      checkReferences([rule('default', 'payments', ['v1']), routes('default', 'payments', 'v1')]),
      [],
    );
    assert.deepEqual(
      checkReferences([
        rule('shop', 'payments', ['v1']),
        routes('default', 'payments.shop.svc.cluster.local', 'v1'),
      ]),
      [],
    );
    assert.deepEqual(
      checkReferences([
        rule('default', 'payments.default', ['v2']),
        routes('shop', 'payments', 'v2'),
      ]),
      [],
    );
  });

  it('names each route and mirror to a subset no DestinationRule defines', () => {
    assert.deepEqual(
      checkReferences([
        rule('default', 'payments', ['v1']),
        routes('default', 'payments', 'v2', 'v3'),
      ]),
      [
        {
          resource: 'VirtualService/default/vs',
          path: 'spec.http[0].route[0].destination.subset',
          reason: 'subset "v2" of host "payments" is defined by no DestinationRule',
        },
        {
          resource: 'VirtualService/default/vs',
          path: 'spec.http[0].mirror.subset',
          reason: 'subset "v3" of host "payments" is defined by no DestinationRule',
        },
      ],
    );
    // A subset of another host does not count.
    assert.equal(
      checkReferences([rule('default', 'orders', ['v1']), routes('default', 'payments', 'v1')])
        .length,
      1,
    );
  });
});

/** A well-formed result: ok with a resource, or refused with at least one problem. */
function assertWellFormed(r: ParseResult): void {
  if (r.ok) {
    assert.ok(MESH_KINDS.includes(r.resource.kind));
    for (const w of r.warnings) assert.match(w, /^spec\.[^:]*: /);
    return;
  }
  assert.ok(r.problems.length > 0);
  for (const p of r.problems) {
    assert.equal(typeof p.path, 'string');
    assert.ok(p.reason.length > 0);
  }
}

/** Every path (as keys) to a value inside `v`. */
function pathsOf(v: unknown, at: readonly (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [[...at]];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...pathsOf(x, [...at, i])));
  else if (typeof v === 'object' && v !== null)
    for (const [k, x] of Object.entries(v)) out.push(...pathsOf(x, [...at, k]));
  return out;
}

type Mutation =
  | { readonly op: 'set'; readonly value: unknown }
  | { readonly op: 'delete' }
  | { readonly op: 'add'; readonly key: string; readonly value: unknown };

/** `root` with the value at `path` replaced, deleted, or given a new key. */
function mutate(root: unknown, path: readonly (string | number)[], m: Mutation): unknown {
  const copy = structuredClone(root);
  if (path.length === 0) return m.op === 'set' ? m.value : copy;
  let parent = copy as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (m.op === 'set') parent[last] = m.value;
  else if (m.op === 'delete') {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else {
    const target = parent[last];
    if (typeof target === 'object' && target !== null && !Array.isArray(target))
      (target as Record<string, unknown>)[m.key] = m.value;
  }
  return copy;
}

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), value: fc.jsonValue() }),
  fc.record({
    op: fc.constant('set' as const),
    value: fc.constantFrom(0, -1, 101, 1.5, '', 'x', 'V1', '5s', true, null, [], {}),
  }),
  fc.record({ op: fc.constant('delete' as const) }),
  fc.record({
    op: fc.constant('add' as const),
    key: fc.constantFrom(
      'weight',
      'hosts',
      'circuitBreaker',
      'consecutiveErrors',
      'x',
      'selector',
      'host',
    ),
    value: fc.jsonValue(),
  }),
);

/** The documents of a multi-document YAML file, as plain data. */
const yamlDocs = (path: string): unknown[] =>
  parseAllDocuments(readFileSync(path, 'utf8')).map((d) => d.toJS() as unknown);

/** Every document known good: the table's, the seed's (with its spellings) and the examples'. */
const GOOD_DOCS = [
  ...GOOD.map((c) => c.doc),
  ...yamlDocs('test/fixtures/seed-003-mesh.yaml'),
  ...readdirSync('examples/mesh-resources').flatMap((f) =>
    yamlDocs(join('examples/mesh-resources', f)),
  ),
];

/** A good document with one random mutation. */
const mutatedDoc = fc
  .record({ doc: fc.constantFrom(...GOOD_DOCS), pick: fc.nat(), m: mutation })
  .map(({ doc: d, pick, m }) => {
    const paths = pathsOf(d);
    return mutate(d, paths[pick % paths.length] ?? [], m);
  });

describe('parseMeshResource properties', () => {
  it('never throws on arbitrary JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => assertWellFormed(parseMeshResource(v))),
      { numRuns: 1000, seed: SEED },
    );
  });

  it('never throws on arbitrary documents of each kind', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...MESH_KINDS),
        fc.jsonValue(),
        fc.jsonValue(),
        (kind, metadata, spec) =>
          assertWellFormed(parseMeshResource(doc(kind, spec, metadata as Doc))),
      ),
      { numRuns: 1000, seed: SEED },
    );
  });

  it('never throws on mutated good documents, and what it takes is idempotent', () => {
    let taken = 0;
    fc.assert(
      fc.property(mutatedDoc, (d) => {
        const r = parseMeshResource(d);
        assertWellFormed(r);
        if (!r.ok) return;
        taken++;
        const again = parseMeshResource(JSON.parse(JSON.stringify(r.resource)));
        assert.deepEqual(again, { ok: true, resource: r.resource, warnings: [] });
      }),
      { numRuns: 3000, seed: SEED },
    );
    assert.ok(taken > 100, `only ${taken} mutated documents were taken`);
  });

  it('returns a normalised resource unchanged, with no warnings (every good document)', () => {
    for (const d of GOOD_DOCS) {
      const first = ok(parseMeshResource(d));
      assert.deepEqual(parseMeshResource(first), { ok: true, resource: first, warnings: [] });
      // Stored as JSON: the same again.
      assert.deepEqual(parseMeshResource(JSON.parse(JSON.stringify(first))), {
        ok: true,
        resource: first,
        warnings: [],
      });
    }
  });
});
