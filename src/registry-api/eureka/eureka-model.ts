/**
 * @module The Eureka REST API's data model (issue 23): what a Eureka client sends (an
 * {@link EurekaInstanceInput}) and what it reads ({@link EurekaInstanceView} in an
 * {@link EurekaApplication} in {@link EurekaApplications}). Plain data, no I/O: the codec
 * (eureka-codec.ts) turns bodies into inputs and views into JSON or XML; the mapping
 * (eureka-mapping.ts) turns inputs into catalog registrations and catalog instances into views.
 */

/** Eureka's instance statuses (InstanceInfo.InstanceStatus). */
export const EUREKA_STATUSES = Object.freeze([
  'UP',
  'DOWN',
  'STARTING',
  'OUT_OF_SERVICE',
  'UNKNOWN',
] as const);
export type EurekaStatus = (typeof EUREKA_STATUSES)[number];

/** Eureka's delta actions. */
export type EurekaAction = 'ADDED' | 'MODIFIED' | 'DELETED';

/** A port as Eureka carries it: its number and whether it is enabled. */
export interface EurekaPort {
  readonly port: number;
  readonly enabled: boolean;
}

/** `dataCenterInfo`: its name (`MyOwn`, `Amazon`, `Netflix`), its Java class, Amazon's metadata. */
export interface EurekaDataCenter {
  readonly name: string;
  /** `@class` in JSON, `class` in XML; default {@link DEFAULT_DATACENTER_CLASS}. */
  readonly className: string;
  /** Amazon's instance metadata (`instance-id`, `local-ipv4`...); empty for others. */
  readonly metadata: Readonly<Record<string, string>>;
}

export const DEFAULT_DATACENTER_CLASS = 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo';

/** The lease a client asks for: how often it renews, and how long until it expires unrenewed. */
export interface EurekaLeaseInput {
  /** Default 30. */
  readonly renewalIntervalInSecs: number;
  /** Default 90. */
  readonly durationInSecs: number;
}

/** Eureka's defaults (Netflix LeaseInfo). */
export const DEFAULT_LEASE: EurekaLeaseInput = Object.freeze({
  renewalIntervalInSecs: 30,
  durationInSecs: 90,
});

/**
 * A registration body (`POST /apps/{app}`, JSON `{"instance": {...}}` or XML `<instance>`), validated
 * and with Eureka's defaults applied. Fields a client sends that Meshwork does not keep
 * (`sid`, `countryId`, `asgName`, timestamps, `actionType`, `isCoordinatingDiscoveryServer`) are
 * accepted and ignored.
 */
export interface EurekaInstanceInput {
  /** As sent; absent: the client did not send one (eureka-js-client then uses `hostName`). */
  readonly instanceId: string | undefined;
  /** As sent (any case); the catalog service is its lower-cased form. */
  readonly app: string;
  readonly appGroupName: string | undefined;
  readonly hostName: string;
  readonly ipAddr: string;
  /** Default UP. */
  readonly status: EurekaStatus;
  /** `overriddenstatus` / `overriddenStatus`; default UNKNOWN (no override). */
  readonly overriddenStatus: EurekaStatus;
  /** Default { port: 7001, enabled: true } when absent (Eureka's default). */
  readonly port: EurekaPort;
  /** Default { port: 7002, enabled: false } when absent. */
  readonly securePort: EurekaPort;
  readonly vipAddress: string | undefined;
  readonly secureVipAddress: string | undefined;
  readonly homePageUrl: string | undefined;
  readonly statusPageUrl: string | undefined;
  readonly healthCheckUrl: string | undefined;
  readonly secureHealthCheckUrl: string | undefined;
  readonly dataCenterInfo: EurekaDataCenter;
  readonly leaseInfo: EurekaLeaseInput;
  /** Free metadata (keys may contain '.', as Spring's `management.port`). */
  readonly metadata: Readonly<Record<string, string>>;
}

/** The lease as readers see it (epoch ms; 0 = never). */
export interface EurekaLeaseView extends EurekaLeaseInput {
  readonly registrationTimestamp: number;
  readonly lastRenewalTimestamp: number;
  readonly evictionTimestamp: number;
  readonly serviceUpTimestamp: number;
}

/** One instance as a Eureka client reads it: what was registered, with its id, lease and times. */
export interface EurekaInstanceView extends Omit<
  EurekaInstanceInput,
  'instanceId' | 'app' | 'leaseInfo'
> {
  readonly instanceId: string;
  /** Upper case, as Eureka shows app names. */
  readonly app: string;
  readonly leaseInfo: EurekaLeaseView;
  /** Epoch ms. */
  readonly lastUpdatedTimestamp: number;
  /** Epoch ms. */
  readonly lastDirtyTimestamp: number;
  readonly actionType: EurekaAction;
}

/** An application: its upper-case name and its instances. */
export interface EurekaApplication {
  readonly name: string;
  readonly instances: readonly EurekaInstanceView[];
}

/** `GET /apps` and `GET /apps/delta`. */
export interface EurekaApplications {
  /** `versions__delta`: the catalog index the answer reflects. */
  readonly versionsDelta: number;
  /**
   * `apps__hashcode`: Eureka's reconcile hash of the FULL registry (also on a delta answer):
   * `<STATUS>_<count>_` per status present, statuses in alphabetical order, e.g. `DOWN_1_UP_3_`.
   */
  readonly appsHashCode: string;
  readonly applications: readonly EurekaApplication[];
}

/** The body formats the API speaks (by `Accept`, and `Content-Type` for bodies). */
export type EurekaFormat = 'json' | 'xml';

/**
 * A body refused: `field` is the dotted path of the offending field (`instance.port.$`,
 * `instance.status`, `body` for a document that does not parse), `reason` says why.
 * Answered 400 with a body naming both.
 */
export class EurekaBodyError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'EurekaBodyError';
  }
}

/** Eureka's reconcile hash of a registry: see {@link EurekaApplications.appsHashCode}. */
export function appsHashCode(statuses: Iterable<EurekaStatus>): string {
  const counts = new Map<EurekaStatus, number>();
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
  return [...counts.keys()]
    .sort()
    .map((s) => `${s}_${counts.get(s) ?? 0}_`)
    .join('');
}
