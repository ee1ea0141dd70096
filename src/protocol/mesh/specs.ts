/**
 * @module The specs of the mesh kinds in their normalised form: Istio's field names and shapes
 * (durations stay Istio strings like "5s"), with the seeds' old spellings already rewritten
 * (circuitBreaker -> outlierDetection, consecutiveErrors -> consecutive5xxErrors, a missing
 * `hosts` filled in). This is what the store holds and the compiler reads; ./parse.ts makes it
 * from user YAML. Only the documented subset (docs/mesh.md) is here: anything else is refused.
 */

/** Istio's StringMatch: exactly one of exact, prefix, regex (RE2). */
export type StringMatch =
  { readonly exact: string } | { readonly prefix: string } | { readonly regex: string };

export interface Percent {
  /** 0..100, fractions allowed. */
  readonly value: number;
}

export interface HeaderOperations {
  readonly set?: Readonly<Record<string, string>>;
  readonly add?: Readonly<Record<string, string>>;
  readonly remove?: readonly string[];
}

export interface Headers {
  readonly request?: HeaderOperations;
  readonly response?: HeaderOperations;
}

export interface HttpMatchRequest {
  readonly name?: string;
  readonly uri?: StringMatch;
  readonly method?: StringMatch;
  readonly authority?: StringMatch;
  /** Header names lower-case. */
  readonly headers?: Readonly<Record<string, StringMatch>>;
  readonly queryParams?: Readonly<Record<string, StringMatch>>;
  readonly ignoreUriCase?: boolean;
}

export interface Destination {
  /** A service name, its long form `svc.<ns>.svc.<domain>`, or a ServiceEntry host. */
  readonly host: string;
  readonly subset?: string;
  readonly port?: { readonly number: number };
}

export interface HttpRouteDestination {
  readonly destination: Destination;
  /** 0..100; the weights of a route's destinations sum to 100 (absent on a single destination). */
  readonly weight?: number;
  readonly headers?: Headers;
}

export interface HttpRetry {
  readonly attempts: number;
  readonly perTryTimeout?: string;
  /** Envoy/Istio retry conditions, comma-separated: 5xx, gateway-error, connect-failure, reset, retriable-4xx, refused-stream, or status codes. */
  readonly retryOn?: string;
}

export interface HttpFaultInjection {
  readonly delay?: { readonly fixedDelay: string; readonly percentage?: Percent };
  readonly abort?: { readonly httpStatus: number; readonly percentage?: Percent };
}

export interface HttpRoute {
  readonly name?: string;
  /** Any of these (OR); absent: every request. */
  readonly match?: readonly HttpMatchRequest[];
  readonly route: readonly HttpRouteDestination[];
  readonly rewrite?: { readonly uri?: string; readonly authority?: string };
  readonly timeout?: string;
  readonly retries?: HttpRetry;
  readonly fault?: HttpFaultInjection;
  readonly mirror?: Destination;
  /** Share of requests mirrored (default 100 when `mirror` is set). */
  readonly mirrorPercentage?: Percent;
  readonly headers?: Headers;
}

export interface VirtualServiceSpec {
  /** Filled in from the destinations when the YAML had none (the seeds' spelling). */
  readonly hosts: readonly string[];
  /** Gateway names; absent or `mesh` included: sidecars get it. Istio's rule. */
  readonly gateways?: readonly string[];
  readonly http: readonly HttpRoute[];
}

export type SimpleLb =
  'UNSPECIFIED' | 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH';

export interface ConsistentHashLb {
  readonly httpHeaderName?: string;
  readonly httpCookie?: { readonly name: string; readonly path?: string; readonly ttl?: string };
  readonly useSourceIp?: boolean;
  readonly httpQueryParameterName?: string;
  readonly ringHash?: { readonly minimumRingSize?: number };
  readonly maglev?: { readonly tableSize?: number };
}

export interface LoadBalancerSettings {
  readonly simple?: SimpleLb;
  readonly consistentHash?: ConsistentHashLb;
}

export interface ConnectionPoolSettings {
  readonly tcp?: { readonly maxConnections?: number; readonly connectTimeout?: string };
  readonly http?: {
    readonly http1MaxPendingRequests?: number;
    readonly http2MaxRequests?: number;
    readonly maxRequestsPerConnection?: number;
    readonly maxRetries?: number;
    readonly idleTimeout?: string;
  };
}

export interface OutlierDetection {
  readonly consecutive5xxErrors?: number;
  readonly consecutiveGatewayErrors?: number;
  readonly interval?: string;
  readonly baseEjectionTime?: string;
  readonly maxEjectionPercent?: number;
  readonly minHealthPercent?: number;
}

export interface TrafficPolicy {
  readonly loadBalancer?: LoadBalancerSettings;
  readonly connectionPool?: ConnectionPoolSettings;
  /** `circuitBreaker` in the seeds' YAML is read as this. */
  readonly outlierDetection?: OutlierDetection;
  /**
   * TLS to the destination (Istio's ClientTLSSettings): ISTIO_MUTUAL forces the mesh's mTLS,
   * DISABLE turns it off; absent: auto mTLS (to the instances that have a sidecar). SIMPLE and
   * MUTUAL (certificates of your own) are refused.
   */
  readonly tls?: { readonly mode: 'DISABLE' | 'ISTIO_MUTUAL' };
}

export interface Subset {
  readonly name: string;
  /** Instance labels: meta, plus `app: <service>`. */
  readonly labels?: Readonly<Record<string, string>>;
  readonly trafficPolicy?: TrafficPolicy;
}

export interface DestinationRuleSpec {
  readonly host: string;
  readonly trafficPolicy?: TrafficPolicy;
  readonly subsets?: readonly Subset[];
}

export interface ServicePort {
  readonly number: number;
  readonly name: string;
  /** HTTP, HTTPS, HTTP2, GRPC, TCP, TLS (upper-case). */
  readonly protocol?: string;
  readonly targetPort?: number;
}

export interface WorkloadEntry {
  readonly address: string;
  readonly ports?: Readonly<Record<string, number>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly weight?: number;
}

export interface ServiceEntrySpec {
  readonly hosts: readonly string[];
  readonly ports: readonly ServicePort[];
  readonly location?: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  readonly resolution: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';
  readonly endpoints?: readonly WorkloadEntry[];
}

export interface WorkloadSelector {
  readonly matchLabels: Readonly<Record<string, string>>;
}

export interface SidecarSpec {
  readonly workloadSelector?: WorkloadSelector;
  readonly outboundTrafficPolicy?: { readonly mode: 'ALLOW_ANY' | 'REGISTRY_ONLY' };
}

export interface AuthorizationSource {
  readonly principals?: readonly string[];
  readonly notPrincipals?: readonly string[];
  readonly namespaces?: readonly string[];
  readonly notNamespaces?: readonly string[];
  readonly ipBlocks?: readonly string[];
  readonly notIpBlocks?: readonly string[];
  /** Istio's client address behind trusted proxies; Meshwork trusts none: the same as ipBlocks. */
  readonly remoteIpBlocks?: readonly string[];
  readonly notRemoteIpBlocks?: readonly string[];
}

export interface AuthorizationOperation {
  readonly hosts?: readonly string[];
  readonly notHosts?: readonly string[];
  readonly ports?: readonly string[];
  readonly notPorts?: readonly string[];
  readonly methods?: readonly string[];
  readonly notMethods?: readonly string[];
  readonly paths?: readonly string[];
  readonly notPaths?: readonly string[];
}

export interface AuthorizationCondition {
  readonly key: string;
  readonly values?: readonly string[];
  readonly notValues?: readonly string[];
}

export interface AuthorizationRule {
  readonly from?: readonly { readonly source: AuthorizationSource }[];
  readonly to?: readonly { readonly operation: AuthorizationOperation }[];
  readonly when?: readonly AuthorizationCondition[];
}

export interface AuthorizationPolicySpec {
  readonly selector?: WorkloadSelector;
  /** Default ALLOW. */
  readonly action: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
  readonly provider?: { readonly name: string };
  readonly rules?: readonly AuthorizationRule[];
}

export type MtlsMode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface PeerAuthenticationSpec {
  readonly selector?: WorkloadSelector;
  readonly mtls?: { readonly mode: MtlsMode };
  readonly portLevelMtls?: Readonly<Record<string, { readonly mode: MtlsMode }>>;
}

/** meshwork.dev/v1 LocalRateLimit: a token bucket per proxy (Envoy's local_ratelimit). */
export interface LocalRateLimitSpec {
  /** The workloads whose inbound side is limited; or `host` for the outbound calls to a service. */
  readonly selector?: WorkloadSelector;
  readonly host?: string;
  readonly tokenBucket: {
    readonly maxTokens: number;
    readonly tokensPerFill: number;
    readonly fillInterval: string;
  };
}

/** meshwork.dev/v1 ResponseCache: GET responses of a host cached per Cache-Control. */
export interface ResponseCacheSpec {
  readonly host: string;
  /** Entries kept (LRU). */
  readonly maxEntries: number;
  /** Largest body cached, bytes. */
  readonly maxBodyBytes: number;
  /** TTL when the response gives no max-age (absent: such responses are not cached). */
  readonly defaultTtl?: string;
}

/** meshwork.dev/v1 RetryBudget: the retry budget the SDK, sidecars and gateways share for a host. */
export interface RetryBudgetSpec {
  readonly host: string;
  /** Retries may add at most this percent of requests (Linkerd's retryRatio x 100). */
  readonly budgetPercent: number;
  /** Retries always allowed per second regardless of the ratio. */
  readonly minRetriesPerSecond: number;
  /** Window the ratio is measured over. */
  readonly ttl?: string;
}
