/**
 * @module Eureka's JSON wire format (the Jackson codec of Eureka 1.10, which Spring Cloud and
 * eureka-js-client read): the registration body in, and applications, an application or an
 * instance out. Lists are always arrays, even of one; timestamps outside leaseInfo are strings,
 * as Eureka writes them.
 */
import { readInstanceDocument } from './eureka-instance-reader.js';
import {
  EurekaBodyError,
  type EurekaApplication,
  type EurekaApplications,
  type EurekaInstanceInput,
  type EurekaInstanceView,
  type EurekaPort,
} from './eureka-model.js';

/** The registration in a JSON body (`{"instance": {...}}`); throws only EurekaBodyError. */
export function parseJsonInstance(text: string): EurekaInstanceInput {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new EurekaBodyError('body', `not valid JSON (${(err as Error).message})`);
  }
  return readInstanceDocument(doc);
}

const jsonPort = (p: EurekaPort): object => ({ $: p.port, '@enabled': String(p.enabled) });

/** Jackson writes an empty metadata map as this marker, which Eureka's Java client expects. */
const EMPTY_MAP = Object.freeze({ '@class': 'java.util.Collections$EmptyMap' });

const hasKeys = (r: Readonly<Record<string, string>>): boolean => {
  for (const _ in r) return true;
  return false;
};

/** The instance as Eureka's JSON codec shapes it (undefined fields are left out by stringify). */
function jsonInstance(v: EurekaInstanceView): object {
  const dc = v.dataCenterInfo;
  return {
    instanceId: v.instanceId,
    hostName: v.hostName,
    app: v.app,
    appGroupName: v.appGroupName,
    ipAddr: v.ipAddr,
    status: v.status,
    overriddenStatus: v.overriddenStatus,
    overriddenstatus: v.overriddenStatus,
    port: jsonPort(v.port),
    securePort: jsonPort(v.securePort),
    countryId: 1,
    dataCenterInfo: hasKeys(dc.metadata)
      ? { '@class': dc.className, name: dc.name, metadata: dc.metadata }
      : { '@class': dc.className, name: dc.name },
    leaseInfo: {
      renewalIntervalInSecs: v.leaseInfo.renewalIntervalInSecs,
      durationInSecs: v.leaseInfo.durationInSecs,
      registrationTimestamp: v.leaseInfo.registrationTimestamp,
      lastRenewalTimestamp: v.leaseInfo.lastRenewalTimestamp,
      evictionTimestamp: v.leaseInfo.evictionTimestamp,
      serviceUpTimestamp: v.leaseInfo.serviceUpTimestamp,
    },
    metadata: hasKeys(v.metadata) ? v.metadata : EMPTY_MAP,
    homePageUrl: v.homePageUrl,
    statusPageUrl: v.statusPageUrl,
    healthCheckUrl: v.healthCheckUrl,
    secureHealthCheckUrl: v.secureHealthCheckUrl,
    vipAddress: v.vipAddress,
    secureVipAddress: v.secureVipAddress,
    isCoordinatingDiscoveryServer: 'false',
    lastUpdatedTimestamp: String(v.lastUpdatedTimestamp),
    lastDirtyTimestamp: String(v.lastDirtyTimestamp),
    actionType: v.actionType,
  };
}

const jsonApplication = (app: EurekaApplication): object => ({
  name: app.name,
  instance: app.instances.map(jsonInstance),
});

/** `{"applications": {...}}` for `GET /apps`, `/apps/delta`, `/vips/..`, `/svips/..`. */
export function renderJsonApplications(apps: EurekaApplications): string {
  return JSON.stringify({
    applications: {
      versions__delta: String(apps.versionsDelta),
      apps__hashcode: apps.appsHashCode,
      application: apps.applications.map(jsonApplication),
    },
  });
}

/** `{"application": {...}}` for `GET /apps/{app}`. */
export function renderJsonApplication(app: EurekaApplication): string {
  return JSON.stringify({ application: jsonApplication(app) });
}

/** `{"instance": {...}}` for `GET /apps/{app}/{id}` and `/instances/{id}`. */
export function renderJsonInstance(view: EurekaInstanceView): string {
  return JSON.stringify({ instance: jsonInstance(view) });
}
