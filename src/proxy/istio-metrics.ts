/**
 * @module Istio's standard metrics (istio_requests_total, istio_request_duration_milliseconds,
 * istio_request_bytes, istio_response_bytes) made from the engine's RequestRecords, so the
 * dashboards and alerts written for Istio work on Meshwork. One IstioMetrics per proxy registry:
 * its `source` observer takes the sidecar's outbound and the gateway's requests (Istio's
 * reporter="source"), its `destination` observer the sidecar's inbound (reporter="destination").
 *
 * The hot path adds to plain numbers in a series found through two small maps (the peer, then
 * the status and flags); label sets are built once per series and turned into prom-client
 * samples only at scrape time, as proxy-metrics.ts does. Series are bounded (`maxSeries`):
 * beyond, requests are counted in one series whose labels read `overflow`, and
 * meshwork_<component>_istio_series_overflow_total counts them.
 */
import type { Metric, Registry } from 'prom-client';
import { Counter } from 'prom-client';
import type { Endpoint } from '../client/balancers/index.js';
import { parseSpiffeId, spiffeId } from '../protocol/mesh/ca.js';
import { SERVICE_NAME } from '../protocol/registration.js';
import type { RequestObserver, RequestRecord, ResponseFlag } from './observe.js';
import { peerIdentity } from './peer-identity.js';

/** Istio's istio_request_duration_milliseconds buckets (its stats plugin's defaults), ms. */
export const ISTIO_DURATION_BUCKETS_MS: readonly number[] = Object.freeze([
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
  1800000, 3600000,
]);

/** Istio's istio_request_bytes / istio_response_bytes buckets: 1 to 1e9, powers of ten. */
export const ISTIO_BYTES_BUCKETS: readonly number[] = Object.freeze([
  1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
]);

/** Istio's labels, in this order in every series. */
export const ISTIO_LABELS = Object.freeze([
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_canonical_service',
  'source_canonical_revision',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_canonical_service',
  'destination_canonical_revision',
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
] as const);

export type IstioLabel = (typeof ISTIO_LABELS)[number];
export type IstioLabels = Readonly<Record<IstioLabel, string>>;

/** Istio's value for what a proxy cannot tell. */
const UNKNOWN = 'unknown';

/** The proxy's own workload: the service it serves (a sidecar) or the gateway's name. */
export interface IstioWorkload {
  readonly name: string;
  readonly namespace: string;
  /** The instance's `version` meta (--meta version=v2); absent: `unknown`. */
  readonly version?: string | undefined;
}

export interface IstioMetricsOptions {
  /** `sidecar` or `gateway`: names the overflow counter (meshwork_<component>_...). */
  readonly component: string;
  readonly workload: IstioWorkload;
  /**
   * The mesh trust domain when the proxy has an mTLS identity (its SPIFFE ID is
   * `spiffe://<trustDomain>/ns/<namespace>/sa/<name>`); absent: no mTLS, principals `unknown`.
   */
  readonly trustDomain?: string | undefined;
  /** Distinct label sets kept (default 5000); beyond, the `overflow` series. */
  readonly maxSeries?: number;
}

/** Counts of one label set: plain numbers, per bucket (not cumulative). */
class Series {
  readonly labels: IstioLabels;
  requests = 0;
  readonly duration = new Float64Array(ISTIO_DURATION_BUCKETS_MS.length + 1);
  durationSum = 0;
  readonly requestBytes = new Float64Array(ISTIO_BYTES_BUCKETS.length + 1);
  requestBytesSum = 0;
  readonly responseBytes = new Float64Array(ISTIO_BYTES_BUCKETS.length + 1);
  responseBytesSum = 0;

  constructor(labels: IstioLabels) {
    this.labels = labels;
  }

  add(r: RequestRecord): void {
    this.requests++;
    const d = r.durationMs;
    (this.duration[bucketOf(ISTIO_DURATION_BUCKETS_MS, d)] as number)++;
    this.durationSum += d;
    const q = r.requestBytes;
    (this.requestBytes[bucketOf(ISTIO_BYTES_BUCKETS, q)] as number)++;
    this.requestBytesSum += q;
    const s = r.responseBytes;
    (this.responseBytes[bucketOf(ISTIO_BYTES_BUCKETS, s)] as number)++;
    this.responseBytesSum += s;
  }
}

/** The index of the first bucket whose bound is >= v (the last: +Inf). */
function bucketOf(bounds: readonly number[], v: number): number {
  let i = 0;
  while (i < bounds.length && v > (bounds[i] as number)) i++;
  return i;
}

/**
 * One peer (the destination of a source report, the caller of a destination report): every label
 * but response_code and response_flags, and its series by status and flags.
 */
class PeerGroup {
  readonly base: Omit<IstioLabels, 'response_code' | 'response_flags'>;
  /** By status (no flags: the common case, a number key) or `status,FLAG,FLAG`. */
  readonly series = new Map<number | string, Series>();

  constructor(base: Omit<IstioLabels, 'response_code' | 'response_flags'>) {
    this.base = base;
  }
}

/**
 * Envoy's order of response flags in `%RESPONSE_FLAGS%` (its response_flag_utils), so one set of
 * flags is always written the same way whatever order the engine raised them in.
 */
const FLAG_ORDER: Readonly<Record<ResponseFlag, number>> = {
  UH: 0,
  UT: 1,
  UF: 2,
  UC: 3,
  UO: 4,
  NR: 5,
  DI: 6,
  FI: 7,
  RL: 8,
  DC: 9,
  URX: 10,
  DPE: 11,
  RBAC: 12,
};
const byEnvoyOrder = (a: ResponseFlag, b: ResponseFlag): number => FLAG_ORDER[a] - FLAG_ORDER[b];

/** Istio's response_flags: the flags in Envoy's order, joined by ',' ('-' for none). */
export function responseFlags(flags: readonly ResponseFlag[]): string {
  if (flags.length === 0) return '-';
  if (flags.length === 1) return flags[0] as string;
  return [...flags].sort(byEnvoyOrder).join(',');
}

/** The series key of a record: its status, with its flags when it has any. */
function statusKey(r: RequestRecord): number | string {
  const f = r.flags;
  if (f.length === 0) return r.status;
  return `${r.status},${responseFlags(f)}`;
}

/** Istio's response_flags: the flags joined by ',', or '-' for none. */
function flagsOf(key: number | string): string {
  if (typeof key === 'number') return '-';
  return key.slice(key.indexOf(',') + 1);
}

function codeOf(key: number | string): string {
  return typeof key === 'number' ? String(key) : key.slice(0, key.indexOf(','));
}

/** The FQDN Istio names a service by (destination_service). */
export function serviceFqdn(name: string, namespace: string): string {
  return `${name}.${namespace}.svc.cluster.local`;
}

/** The instance meta that marks a sidecar reached over mTLS (sidecar-proxy's TLS_MODE_META). */
const TLS_MODE_META = 'tls-mode';

/**
 * The labels of Istio's standard metrics from RequestRecords, for one proxy.
 * @example
 * const istio = new IstioMetrics(registry, { component: 'sidecar',
 *   workload: { name: 'orders', namespace: 'default', version: 'v1' }, trustDomain: 'cluster.local' });
 * startSidecarProxy(o, log, { outboundObservers: [istio.source], inboundObservers: [istio.destination] });
 */
export class IstioMetrics {
  readonly source: RequestObserver;
  readonly destination: RequestObserver;
  readonly #o: IstioMetricsOptions;
  readonly #maxSeries: number;
  /** Every series, by its full label key (for scrape and to share a series between caches). */
  readonly #all = new Map<string, Series>();
  /** Every peer group by its label key (two endpoints with the same labels share one). */
  readonly #groups = new Map<string, PeerGroup>();
  /** Source reports: the group of an instance (endpoint objects live as long as a snapshot). */
  readonly #byEndpoint = new WeakMap<Endpoint, PeerGroup>();
  /** Source reports without an instance (local replies), by route and service. */
  readonly #byService = new Map<string, PeerGroup>();
  /** Destination reports: the group of an mTLS connection's verified caller. */
  readonly #bySocket = new WeakMap<object, PeerGroup>();
  /** Destination reports: the group of a caller, by its identity key. */
  readonly #byCaller = new Map<string, PeerGroup>();
  readonly #overflow: [Series | undefined, Series | undefined] = [undefined, undefined];
  #overflowed = 0;
  /** The proxy's own labels as source and as destination. */
  readonly #self: {
    readonly principal: string;
    readonly app: string;
    readonly version: string;
    readonly revision: string;
  };

  constructor(registry: Registry, options: IstioMetricsOptions) {
    this.#o = options;
    this.#maxSeries = options.maxSeries ?? 5000;
    const w = options.workload;
    this.#self = {
      principal:
        options.trustDomain === undefined
          ? UNKNOWN
          : spiffeId(options.trustDomain, w.namespace, w.name),
      app: w.name,
      version: w.version ?? UNKNOWN,
      revision: w.version ?? 'latest',
    };
    this.source = { end: (r) => this.#series(this.#sourcePeer(r), r, 0).add(r) };
    this.destination = { end: (r) => this.#series(this.#caller(r), r, 1).add(r) };
    this.#register(registry);
  }

  /** The series of a record in `group` (the overflow series once maxSeries are kept). */
  #series(group: PeerGroup | undefined, r: RequestRecord, reporter: 0 | 1): Series {
    if (group === undefined) return this.#overflowSeries(reporter);
    const key = statusKey(r);
    let s = group.series.get(key);
    if (s !== undefined) return s;
    const labels: IstioLabels = {
      ...group.base,
      response_code: codeOf(key),
      response_flags: flagsOf(key),
    };
    const full = labelKey(labels);
    s = this.#all.get(full);
    if (s === undefined) {
      if (this.#all.size >= this.#maxSeries) return this.#overflowSeries(reporter);
      s = new Series(labels);
      this.#all.set(full, s);
    }
    group.series.set(key, s);
    return s;
  }

  /** The series of the requests beyond the bound: every label `overflow` but the reporter. */
  #overflowSeries(reporter: 0 | 1): Series {
    this.#overflowed++;
    let s = this.#overflow[reporter];
    if (s === undefined) {
      const labels = Object.fromEntries(ISTIO_LABELS.map((l) => [l, 'overflow'])) as Record<
        IstioLabel,
        string
      >;
      labels.reporter = reporter === 0 ? 'source' : 'destination';
      labels.request_protocol = 'http';
      labels.grpc_response_status = '';
      s = this.#overflow[reporter] = new Series(labels);
    }
    return s;
  }

  /** A group by its labels (shared), or undefined when no more may be kept. */
  #intern(base: PeerGroup['base']): PeerGroup | undefined {
    const key = labelKey(base);
    let g = this.#groups.get(key);
    if (g === undefined) {
      if (this.#groups.size >= this.#maxSeries) return undefined;
      g = new PeerGroup(base);
      this.#groups.set(key, g);
    }
    return g;
  }

  /** reporter="source": the destination is the record's service and instance. */
  #sourcePeer(r: RequestRecord): PeerGroup | undefined {
    const e = r.endpoint;
    if (e !== undefined && r.route !== undefined) {
      const cached = this.#byEndpoint.get(e);
      if (cached !== undefined) return cached;
      const g = this.#intern(this.sourceLabels(r));
      if (g !== undefined) this.#byEndpoint.set(e, g);
      return g;
    }
    const key = r.route === undefined ? '' : `${r.route}\u0000${r.service ?? ''}`;
    const cached = this.#byService.get(key);
    if (cached !== undefined) return cached;
    const g = this.#intern(this.sourceLabels(r));
    if (g !== undefined && this.#byService.size < this.#maxSeries) this.#byService.set(key, g);
    return g;
  }

  /** reporter="destination": the caller is the mTLS peer, or the service its sidecar named. */
  #caller(r: RequestRecord): PeerGroup | undefined {
    // A verified caller is the same for every request of its connection.
    const bySocket = this.#bySocket.get(r.socket);
    if (bySocket !== undefined) return bySocket;
    const peer = peerIdentity(r.socket);
    const claimed = r.headers['x-meshwork-source-service'];
    const key =
      peer?.spiffeId !== undefined
        ? `m${peer.spiffeId}`
        : `${peer?.mtls === true ? 'T' : 'p'}${typeof claimed === 'string' ? claimed : ''}`;
    let g = this.#byCaller.get(key);
    if (g === undefined) {
      g = this.#intern(this.destinationLabels(r));
      if (g !== undefined && this.#byCaller.size < this.#maxSeries) this.#byCaller.set(key, g);
    }
    if (g !== undefined && peer?.spiffeId !== undefined) this.#bySocket.set(r.socket, g);
    return g;
  }

  /** The labels of a source report of `r` (all but response_code and response_flags). */
  sourceLabels(r: RequestRecord): PeerGroup['base'] {
    const w = this.#o.workload;
    const self = this.#self;
    const e = r.endpoint;
    const route = r.route ?? '';
    let name = r.service ?? UNKNOWN;
    let workload = name;
    let namespace = e === undefined ? UNKNOWN : (e.meta['namespace'] ?? 'default');
    let service = r.service === undefined ? UNKNOWN : serviceFqdn(name, namespace);
    let principal = UNKNOWN;
    // Istio's names for traffic that leaves the mesh: the pass-through and the refusal.
    if (route.startsWith('passthrough|')) {
      service = r.service ?? UNKNOWN;
      name = 'PassthroughCluster';
      workload = UNKNOWN;
      namespace = UNKNOWN;
    } else if (route === 'egress-refused') {
      service = r.authority ?? UNKNOWN;
      name = 'BlackHoleCluster';
      workload = UNKNOWN;
    } else if (
      e !== undefined &&
      this.#o.trustDomain !== undefined &&
      e.meta[TLS_MODE_META] === 'istio'
    )
      principal = spiffeId(this.#o.trustDomain, namespace, name);
    const version = e?.meta['version'];
    const mtls = principal !== UNKNOWN;
    return {
      reporter: 'source',
      source_workload: w.name,
      source_workload_namespace: w.namespace,
      source_principal: mtls ? self.principal : UNKNOWN,
      source_app: self.app,
      source_version: self.version,
      source_canonical_service: w.name,
      source_canonical_revision: self.revision,
      destination_workload: workload,
      destination_workload_namespace: namespace,
      destination_principal: principal,
      destination_app: workload,
      destination_version: version ?? UNKNOWN,
      destination_service: service,
      destination_service_name: name,
      destination_service_namespace: namespace,
      destination_canonical_service: workload,
      destination_canonical_revision: version ?? 'latest',
      request_protocol: 'http',
      grpc_response_status: '',
      // Istio leaves it unknown on source reports: the client side does not decide it.
      connection_security_policy: UNKNOWN,
    };
  }

  /** The labels of a destination report of `r` (all but response_code and response_flags). */
  destinationLabels(r: RequestRecord): PeerGroup['base'] {
    const w = this.#o.workload;
    const self = this.#self;
    const peer = peerIdentity(r.socket);
    const id = peer?.spiffeId === undefined ? undefined : parseSpiffeId(peer.spiffeId);
    const claimed = r.headers['x-meshwork-source-service'];
    const workload =
      id?.service ??
      (typeof claimed === 'string' && SERVICE_NAME.test(claimed) ? claimed : UNKNOWN);
    const mtls = peer?.mtls === true;
    const fqdn = serviceFqdn(w.name, w.namespace);
    return {
      reporter: 'destination',
      source_workload: workload,
      source_workload_namespace: id?.namespace ?? UNKNOWN,
      source_principal: peer?.spiffeId ?? UNKNOWN,
      source_app: workload,
      source_version: UNKNOWN,
      source_canonical_service: workload,
      source_canonical_revision: 'latest',
      destination_workload: w.name,
      destination_workload_namespace: w.namespace,
      destination_principal: mtls ? self.principal : UNKNOWN,
      destination_app: self.app,
      destination_version: self.version,
      destination_service: fqdn,
      destination_service_name: w.name,
      destination_service_namespace: w.namespace,
      destination_canonical_service: w.name,
      destination_canonical_revision: self.revision,
      request_protocol: 'http',
      grpc_response_status: '',
      connection_security_policy: mtls ? 'mutual_tls' : 'none',
    };
  }

  /** Every series kept (the overflow ones last), for tests and the scrape. */
  *series(): Iterable<{ readonly labels: IstioLabels; readonly requests: number }> {
    yield* this.#all.values();
    for (const s of this.#overflow) if (s !== undefined) yield s;
  }

  #register(registry: Registry): void {
    const all = (): Iterable<Series> => this.series() as Iterable<Series>;
    registry.registerMetric(
      customMetric('istio_requests_total', 'counter', 'Requests, by Istio labels.', () => {
        const values: Sample[] = [];
        for (const s of all()) values.push({ labels: s.labels, value: s.requests });
        return values;
      }),
    );
    registry.registerMetric(
      histogramMetric(
        'istio_request_duration_milliseconds',
        'Request duration (from the request head to the end of the response), ms.',
        ISTIO_DURATION_BUCKETS_MS,
        all,
        (s) => [s.duration, s.durationSum],
      ),
    );
    registry.registerMetric(
      histogramMetric(
        'istio_request_bytes',
        'Request body sizes, bytes (Content-Length).',
        ISTIO_BYTES_BUCKETS,
        all,
        (s) => [s.requestBytes, s.requestBytesSum],
      ),
    );
    registry.registerMetric(
      histogramMetric(
        'istio_response_bytes',
        'Response body sizes, bytes.',
        ISTIO_BYTES_BUCKETS,
        all,
        (s) => [s.responseBytes, s.responseBytesSum],
      ),
    );
    const overflowed = (): number => this.#overflowed;
    new Counter({
      name: `meshwork_${this.#o.component}_istio_series_overflow_total`,
      help: 'Requests counted in the istio_* series labelled "overflow": the distinct label sets reached their bound.',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(overflowed());
      },
    });
  }
}

/** The series key of a label set: its values joined (label order is fixed). */
function labelKey(labels: Partial<IstioLabels>): string {
  let key = '';
  for (const l of ISTIO_LABELS) key += `${labels[l] ?? ''}\u0000`;
  return key;
}

interface Sample {
  metricName?: string;
  labels: Readonly<Record<string, string | number>>;
  value: number;
}

/**
 * A prom-client metric whose samples `values()` makes at scrape time (prom-client's registry
 * only calls get() and reset() of a metric, and reads its name).
 */
function customMetric(
  name: string,
  type: 'counter' | 'histogram',
  help: string,
  values: () => Sample[],
): Metric {
  const metric = {
    name,
    help,
    type,
    aggregator: 'sum',
    get: () => Promise.resolve({ name, help, type, values: values(), aggregator: 'sum' }),
    // Counters only grow: a registry reset does not clear the proxy's counts.
    reset: () => undefined,
  };
  return metric as unknown as Metric;
}

/** A histogram metric read from each series' plain bucket counts. */
function histogramMetric(
  name: string,
  help: string,
  bounds: readonly number[],
  series: () => Iterable<Series>,
  pick: (s: Series) => [Float64Array, number],
): Metric {
  return customMetric(name, 'histogram', help, () => {
    const values: Sample[] = [];
    for (const s of series()) {
      if (s.requests === 0) continue;
      const [buckets, sum] = pick(s);
      let acc = 0;
      for (let i = 0; i < bounds.length; i++) {
        acc += buckets[i] as number;
        values.push({
          metricName: `${name}_bucket`,
          labels: { ...s.labels, le: bounds[i] as number },
          value: acc,
        });
      }
      values.push(
        { metricName: `${name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.requests },
        { metricName: `${name}_sum`, labels: s.labels, value: sum },
        { metricName: `${name}_count`, labels: s.labels, value: s.requests },
      );
    }
    return values;
  });
}
