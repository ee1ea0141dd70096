/**
 * @module Per-proxy snapshots: what the control plane compiles for one proxy (gateway or
 * sidecar) from the catalog and the mesh resources, and pushes to it. Self-contained: a proxy
 * routes from a snapshot alone (endpoints included), so a persisted one serves while no agent
 * answers. Durations are whole milliseconds here; resources' strings are parsed by the compiler.
 */
import type { InstanceStatus } from '../../core/types.js';
import type { MtlsMode, AuthorizationPolicySpec } from './specs.js';
import type { ClusterHealth } from './proxy-health.js';

export type ProxyKind = 'gateway' | 'sidecar';

/** Who a proxy is, as it says when it connects. */
export interface ProxyIdentity {
  /** Unique per running proxy (e.g. `gateway~host~pid`, or the sidecar's instance id). */
  readonly id: string;
  readonly kind: ProxyKind;
  /** Gateway: its name (what `gateways:` lists). Sidecar: the service it fronts. */
  readonly name: string;
  /** Default `default`. */
  readonly namespace: string;
  /**
   * Sidecars: the services (and ServiceEntry hosts) the app calls, when declared (`--upstream`,
   * like a Sidecar resource's egress hosts); the snapshot then holds only those, and a change
   * to any other service leaves the proxy alone. Absent: every service (Istio's default).
   */
  readonly upstreams?: readonly string[];
}

/** A string condition, compiled from Istio's StringMatch; `regex` is RE2, anchored at both ends. */
export type SnapshotStringMatch =
  { readonly exact: string } | { readonly prefix: string } | { readonly regex: string };

/** One `match` entry of a route; every field given must hold. */
export interface SnapshotMatch {
  readonly path?: SnapshotStringMatch;
  readonly method?: SnapshotStringMatch;
  readonly authority?: SnapshotStringMatch;
  /** Header names lower-case. */
  readonly headers?: readonly ({ readonly name: string } & SnapshotStringMatch)[];
  readonly query?: readonly ({ readonly name: string } & SnapshotStringMatch)[];
  readonly ignoreUriCase?: boolean;
}

export interface SnapshotHeaderEdits {
  readonly set?: Readonly<Record<string, string>>;
  readonly add?: Readonly<Record<string, string>>;
  readonly remove?: readonly string[];
}

export interface SnapshotBackend {
  /** A `SnapshotCluster.name` of the same snapshot. */
  readonly cluster: string;
  /** Relative share; weights of a route sum to 100. */
  readonly weight: number;
  readonly requestHeaders?: SnapshotHeaderEdits;
  readonly responseHeaders?: SnapshotHeaderEdits;
}

export interface SnapshotRoute {
  /** `<namespace>/<virtualservice>/<http route name or index>`, for metrics and logs. */
  readonly name: string;
  /** The hosts this route serves (VirtualService hosts, normalised: short service names and `*`). */
  readonly hosts: readonly string[];
  /** Any of these (OR); empty: every request. */
  readonly match: readonly SnapshotMatch[];
  readonly backends: readonly SnapshotBackend[];
  /** Replaces the matched prefix (prefix matches) or the whole path (others). */
  readonly rewrite?: { readonly uri?: string; readonly authority?: string };
  readonly requestHeaders?: SnapshotHeaderEdits;
  readonly responseHeaders?: SnapshotHeaderEdits;
  /** Deadline of the whole request, retries included. */
  readonly timeoutMs?: number;
  readonly retries?: {
    readonly attempts: number;
    readonly perTryTimeoutMs?: number;
    readonly retryOn: readonly string[];
  };
  readonly fault?: {
    readonly delay?: { readonly ms: number; readonly percent: number };
    readonly abort?: { readonly status: number; readonly percent: number };
  };
  readonly mirror?: { readonly cluster: string; readonly percent: number };
}

/** An endpoint of a cluster: the instance fields a proxy balances and checks on. */
export interface SnapshotEndpoint {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly status: InstanceStatus;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
  readonly weights: { readonly passing: number; readonly warning: number };
}

export type SnapshotLoadBalancer =
  | { readonly type: 'round-robin' | 'least-request' | 'random' }
  | {
      readonly type: 'ring-hash' | 'maglev';
      readonly hashOn:
        | { readonly header: string }
        | { readonly cookie: string; readonly ttlMs?: number; readonly path?: string }
        | { readonly sourceIp: true }
        | { readonly query: string };
      readonly minimumRingSize?: number;
    };

export interface SnapshotCluster {
  /** `<service>` or `<service>|<subset>` (`payments|v2`); ServiceEntry hosts: the host. */
  readonly name: string;
  /** The catalog service, or the external host of a ServiceEntry. */
  readonly service: string;
  readonly subset?: string;
  /** The port a destination named (`destination.port.number`), when it named one. */
  readonly port?: number;
  /** Endpoints already filtered to the subset (labels matched), in a stable order. */
  readonly endpoints: readonly SnapshotEndpoint[];
  /** A ServiceEntry host: its resolution (DNS: the proxy resolves `endpoints` addresses or the host). */
  readonly external?: {
    readonly resolution: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';
    readonly protocol?: string;
  };
  readonly loadBalancer?: SnapshotLoadBalancer;
  /**
   * Issue 20: the DestinationRule's `trafficPolicy.tls.mode`: ISTIO_MUTUAL (mTLS to every
   * instance) or DISABLE (plaintext to every instance); absent: auto mTLS, to the instances
   * whose meta says they have a sidecar with an identity (`tls-mode: istio`).
   */
  readonly tls?: { readonly mode: 'DISABLE' | 'ISTIO_MUTUAL' };
  readonly connectionPool?: {
    readonly maxConnections?: number;
    readonly maxPendingRequests?: number;
    readonly maxRequests?: number;
    readonly maxRequestsPerConnection?: number;
    readonly maxRetries?: number;
    readonly connectTimeoutMs?: number;
    readonly idleTimeoutMs?: number;
  };
  readonly outlierDetection?: {
    readonly consecutive5xxErrors?: number;
    readonly consecutiveGatewayErrors?: number;
    readonly intervalMs: number;
    readonly baseEjectionMs: number;
    readonly maxEjectionPercent: number;
    readonly minHealthPercent: number;
  };
  readonly retryBudget?: {
    readonly budgetPercent: number;
    readonly minRetriesPerSecond: number;
    readonly ttlMs: number;
  };
  readonly rateLimit?: {
    readonly maxTokens: number;
    readonly tokensPerFill: number;
    readonly fillIntervalMs: number;
  };
  readonly cache?: {
    readonly maxEntries: number;
    readonly maxBodyBytes: number;
    readonly defaultTtlMs?: number;
  };
}

/** A sidecar's inbound side: the policies of the service it fronts. */
export interface SnapshotInbound {
  readonly service: string;
  readonly mtls: MtlsMode;
  readonly portLevelMtls?: Readonly<Record<string, MtlsMode>>;
  /** The AuthorizationPolicies selecting this service, with their keys, in name order. */
  readonly authorization: readonly {
    readonly key: string;
    readonly spec: AuthorizationPolicySpec;
  }[];
  readonly rateLimit?: {
    readonly maxTokens: number;
    readonly tokensPerFill: number;
    readonly fillIntervalMs: number;
  };
}

export interface MeshSnapshot {
  /** A hash of everything below but `index` and `proxy`: unchanged content, same version. */
  readonly version: string;
  /** The catalog index it was compiled at (informational). */
  readonly index: number;
  readonly proxy: ProxyIdentity;
  /** In order: the first whose host and match fit wins. */
  readonly routes: readonly SnapshotRoute[];
  readonly clusters: readonly SnapshotCluster[];
  /** Sidecars only. */
  readonly inbound?: SnapshotInbound;
  readonly egress: { readonly mode: 'ALLOW_ANY' | 'REGISTRY_ONLY' };
  /**
   * Issue 20: the mesh CA's trust, pushed so every proxy learns a root rotation: verify peers
   * against `bundlePem`; when `activeRootId` changes, get a leaf from the new root. Absent: the
   * agent has no CA (mTLS cannot be used).
   */
  readonly ca?: SnapshotTrust;
}

export interface SnapshotTrust {
  readonly trustDomain: string;
  /** Every root's PEM (active first, then the ones being retired). */
  readonly bundlePem: string;
  readonly activeRootId: string;
}

/** One frame of the push stream (`GET /api/v1/mesh/stream`), one JSON object per line. */
export type PushFrame =
  { readonly type: 'snapshot'; readonly snapshot: MeshSnapshot } | { readonly type: 'ping' };

/** An ACK (no `error`) or NACK of one version (`POST /api/v1/mesh/ack`). */
export interface PushAck {
  readonly id: string;
  readonly version: string;
  /** Present: a NACK; the proxy stays on its last good version. */
  readonly error?: string;
}

export type ProxySyncState = 'SYNCED' | 'STALE' | 'NACKED';

/** One connected proxy as `meshwork proxy-status` lists it (`GET /api/v1/mesh/proxies`). */
export interface ProxyStatus extends ProxyIdentity {
  /** The agent (node name) whose stream the proxy is on. */
  readonly agent: string;
  readonly connectedAt: number;
  readonly sent?: string;
  readonly acked?: string;
  /** SYNCED: the last sent version is ACKed; STALE: sent, not ACKed yet; NACKED: refused. */
  readonly state: ProxySyncState;
  /** The reason of the last NACK (with state NACKED). */
  readonly error?: string;
  readonly nackedVersion?: string;
  /**
   * The clusters where the proxy ejected instances or is in panic mode, as it last reported
   * them (absent: it reported none, or nothing to say).
   */
  readonly health?: readonly ClusterHealth[];
  /** When the proxy first reported the health it has now (ms since the epoch). */
  readonly healthSince?: number;
}

/** The answer of `GET /api/v1/mesh/proxies`. */
export interface ProxyStatusList {
  /** Sorted by id. */
  readonly proxies: readonly ProxyStatus[];
  /** Cluster mode: the agents that did not answer in time (their proxies are missing). */
  readonly unreachable: readonly {
    readonly agent: string;
    readonly url: string;
    readonly error: string;
  }[];
}
