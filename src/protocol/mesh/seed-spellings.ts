/**
 * @module The seeds' spellings that stray from Istio (issue 18: "the seeds' YAML applies
 * unchanged"), rewritten to Istio's before the schemas run, each with a warning that names the
 * Istio spelling: a VirtualService without `hosts`, a weight on a route's only destination,
 * `trafficPolicy.circuitBreaker` and its `consecutiveErrors`.
 */
import { resolveMeshHost } from './references.js';
import type { ResourceProblem } from './resource.js';

type Obj = Readonly<Record<string, unknown>>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A path renamed by a respelling: problems found at `istio` are reported at `written`. */
export interface Renamed {
  /** The path as the document wrote it (`spec.trafficPolicy.circuitBreaker`). */
  readonly written: string;
  /** The path as the schemas see it (`spec.trafficPolicy.outlierDetection`). */
  readonly istio: string;
}

/** What {@link respellSeedFields} made of a document. */
export interface Respelled {
  /** The document in Istio's spelling; the input is left as it was (changed parts are copies). */
  readonly doc: Obj;
  readonly warnings: string[];
  readonly problems: ResourceProblem[];
  readonly renamed: Renamed[];
}

/**
 * Rewrites the seeds' spellings of `doc` (a resource document of any kind) to Istio's. Reads
 * `doc` defensively (it has not been validated yet) and never throws on plain data.
 */
export function respellSeedFields(doc: Obj): Respelled {
  const r: Respelled = { doc, warnings: [], problems: [], renamed: [] };
  const spec = doc['spec'];
  if (!isObj(spec)) return r;
  let respelled: Obj = spec;
  if (doc['kind'] === 'VirtualService') respelled = virtualService(spec, namespaceOf(doc), r);
  if (doc['kind'] === 'DestinationRule') respelled = destinationRule(spec, r);
  return respelled === spec ? r : { ...r, doc: { ...doc, spec: respelled } };
}

function namespaceOf(doc: Obj): string {
  const metadata = doc['metadata'];
  const ns = isObj(metadata) ? metadata['namespace'] : undefined;
  return typeof ns === 'string' ? ns : 'default';
}

function virtualService(spec: Obj, namespace: string, r: Respelled): Obj {
  let out = spec;
  const http = spec['http'];
  if (Array.isArray(http)) {
    let changed = false;
    const routes = http.map((h: unknown, i) => {
      if (!isObj(h) || !Array.isArray(h['route']) || h['route'].length !== 1) return h;
      const only: unknown = h['route'][0];
      if (!isObj(only) || !Object.hasOwn(only, 'weight')) return h;
      const { weight, ...rest } = only;
      changed = true;
      // `weight: 100` says what Istio does anyway (and its docs write it): dropped silently.
      if (weight === 100) return { ...h, route: [rest] };
      r.warnings.push(
        `spec.http[${i}].route[0].weight: ignored: a route's only destination gets all of that route's traffic, whatever its weight${typeof weight === 'number' ? ` (${weight})` : ''}; to split traffic, list the destinations in one route, with weights that sum to 100`,
      );
      return { ...h, route: [rest] };
    });
    if (changed) out = { ...out, http: routes };
  }
  if (Object.hasOwn(spec, 'hosts')) return out;
  // Istio requires hosts; the seeds leave them out and mean the host their routes go to.
  const hosts = new Map<string, string>();
  for (const h of Array.isArray(http) ? (http as unknown[]) : []) {
    const route: unknown = isObj(h) ? h['route'] : undefined;
    for (const d of Array.isArray(route) ? (route as unknown[]) : []) {
      const destination = isObj(d) ? d['destination'] : undefined;
      const host = isObj(destination) ? destination['host'] : undefined;
      if (typeof host !== 'string') continue;
      const short = resolveMeshHost(host, namespace);
      if (!hosts.has(short)) hosts.set(short, host);
    }
  }
  const [first, ...others] = hosts.values();
  if (first === undefined) {
    r.problems.push({
      path: 'spec.hosts',
      reason: 'required (and no route destination names a host to take it from)',
    });
  } else if (others.length > 0) {
    const named = [first, ...others.slice(0, 4)].join(', ');
    r.problems.push({
      path: 'spec.hosts',
      reason: `required: the route destinations name several hosts (${named}${others.length > 4 ? ', ...' : ''}), so it cannot be taken from them`,
    });
  } else {
    r.warnings.push(
      `spec.hosts: absent: taken as [${first}], the host every route destination names; Istio requires it: write "hosts: [${first}]"`,
    );
    out = { ...out, hosts: [first] };
  }
  return out;
}

function destinationRule(spec: Obj, r: Respelled): Obj {
  let out = spec;
  const top = trafficPolicy(spec['trafficPolicy'], 'spec.trafficPolicy', r);
  if (top !== spec['trafficPolicy']) out = { ...out, trafficPolicy: top };
  const subsets = spec['subsets'];
  if (Array.isArray(subsets)) {
    let changed = false;
    const respelled = subsets.map((s: unknown, i) => {
      if (!isObj(s)) return s;
      const tp = trafficPolicy(s['trafficPolicy'], `spec.subsets[${i}].trafficPolicy`, r);
      if (tp === s['trafficPolicy']) return s;
      changed = true;
      return { ...s, trafficPolicy: tp };
    });
    if (changed) out = { ...out, subsets: respelled };
  }
  return out;
}

/** `circuitBreaker` (with `consecutiveErrors`) read as `outlierDetection` (`consecutive5xxErrors`). */
function trafficPolicy(tp: unknown, path: string, r: Respelled): unknown {
  if (!isObj(tp) || !Object.hasOwn(tp, 'circuitBreaker')) return tp;
  const { circuitBreaker, ...rest } = tp;
  const at = `${path}.circuitBreaker`;
  if (Object.hasOwn(tp, 'outlierDetection')) {
    r.problems.push({
      path: at,
      reason: 'circuitBreaker is the old name of outlierDetection: set only outlierDetection',
    });
    return rest;
  }
  r.warnings.push(
    `${at}: read as outlierDetection, Istio's name for it (circuitBreaker is not an Istio field): write outlierDetection`,
  );
  r.renamed.push({ written: at, istio: `${path}.outlierDetection` });
  let od = circuitBreaker;
  if (isObj(od) && Object.hasOwn(od, 'consecutiveErrors')) {
    const { consecutiveErrors, ...odRest } = od;
    if (Object.hasOwn(od, 'consecutive5xxErrors')) {
      r.problems.push({
        path: `${at}.consecutiveErrors`,
        reason:
          'consecutiveErrors is the old name of consecutive5xxErrors: set only consecutive5xxErrors',
      });
      od = odRest;
    } else {
      r.warnings.push(
        `${at}.consecutiveErrors: read as outlierDetection.consecutive5xxErrors, Istio's name for it: write consecutive5xxErrors`,
      );
      r.renamed.push({
        written: `${at}.consecutiveErrors`,
        istio: `${path}.outlierDetection.consecutive5xxErrors`,
      });
      od = { ...odRest, consecutive5xxErrors: consecutiveErrors };
    }
  }
  return { ...rest, outlierDetection: od };
}
