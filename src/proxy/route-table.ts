/**
 * @module The route table: compiled route rules (first match wins), then host routing
 * (`<service>.<domain>`). Matching allocates nothing for rules without query conditions or
 * regexes (re2js wraps each input it matches).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { SERVICE_NAME } from '../protocol/registration.js';
import { compileUserRegex } from '../protocol/user-regex.js';

/** The parts of a request the route table looks at. */
export interface MatchInput {
  readonly method: string;
  /** Lower case, without the port. */
  readonly host: string;
  /** The path without the query. */
  readonly path: string;
  /** The authority as sent (port included); absent: `host`. */
  readonly authority?: string;
  /** The raw query (after "?"), '' for none. */
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
}

type ValueTest = (value: string | undefined) => boolean;

/**
 * One header, query, method or authority condition: exactly one of exact, prefix, regex (RE2,
 * anchored at both ends), present. The file config's value matches and a snapshot's
 * StringMatch are both this shape.
 */
export interface ValueMatchSpec {
  readonly exact?: string | undefined;
  readonly prefix?: string | undefined;
  readonly regex?: string | undefined;
  readonly present?: boolean | undefined;
}

/**
 * A route's match block, as the file config (routeMatchSchema) and a mesh snapshot both compile
 * to it: every condition given must hold.
 */
export interface MatchSpec {
  readonly path?:
    | {
        readonly prefix?: string | undefined;
        readonly exact?: string | undefined;
        readonly regex?: string | undefined;
      }
    | undefined;
  /** Compare the path case-insensitively (Istio's ignoreUriCase). */
  readonly ignoreUriCase?: boolean | undefined;
  readonly methods?: readonly string[] | undefined;
  /** The method as a string condition (a snapshot's `method`). */
  readonly method?: ValueMatchSpec | undefined;
  /** The Host header without the port, compared case-insensitively. */
  readonly host?: string | undefined;
  /** The Host header as sent (port included), as a string condition (Istio's `authority`). */
  readonly authority?: ValueMatchSpec | undefined;
  readonly headers?: readonly ({ readonly name: string } & ValueMatchSpec)[] | undefined;
  readonly query?: readonly ({ readonly name: string } & ValueMatchSpec)[] | undefined;
}

function valueTest(m: ValueMatchSpec, field: string): ValueTest {
  if (m.exact !== undefined) {
    const exact = m.exact;
    return (v) => v === exact;
  }
  if (m.prefix !== undefined) {
    const prefix = m.prefix;
    return (v) => v !== undefined && v.startsWith(prefix);
  }
  if (m.regex !== undefined) {
    // Anchored: a header regex describes the whole value, as in Envoy's safe_regex.
    const re = compileUserRegex(m.regex, field);
    return (v) => v !== undefined && re.testExact(v);
  }
  const present = m.present === true;
  return (v) => (v !== undefined) === present;
}

function pathTest(
  path: NonNullable<MatchSpec['path']>,
  ignoreCase: boolean,
): ValueTest | undefined {
  const fold = (s: string): string => (ignoreCase ? s.toLowerCase() : s);
  if (path.exact !== undefined) {
    const exact = fold(path.exact);
    return ignoreCase ? (p) => p?.toLowerCase() === exact : (p) => p === exact;
  }
  if (path.prefix !== undefined) {
    const prefix = fold(path.prefix);
    return ignoreCase
      ? (p) => p !== undefined && p.toLowerCase().startsWith(prefix)
      : (p) => p !== undefined && p.startsWith(prefix);
  }
  if (path.regex !== undefined) {
    // RE2's (?i) flag: the whole pattern matches case-insensitively.
    const re = compileUserRegex(ignoreCase ? `(?i)${path.regex}` : path.regex, 'path.regex');
    return (p) => p !== undefined && re.testExact(p);
  }
  return undefined;
}

/**
 * Compiles a route's match block into one predicate. Regexes are RE2 (linear-time) and anchored
 * at both ends; routeMatchSchema has already refused any pattern RE2 does not take (a snapshot's
 * are checked here: a pattern RE2 refuses throws a validation MeshError naming the field).
 */
export function compileMatch(match: MatchSpec): (input: MatchInput) => boolean {
  const tests: ((input: MatchInput) => boolean)[] = [];
  const path =
    match.path === undefined ? undefined : pathTest(match.path, match.ignoreUriCase === true);
  if (path !== undefined) tests.push((i) => path(i.path));
  if (match.methods !== undefined) {
    const methods = new Set(match.methods);
    tests.push((i) => methods.has(i.method));
  }
  if (match.method !== undefined) {
    const test = valueTest(match.method, 'method.regex');
    tests.push((i) => test(i.method));
  }
  if (match.host !== undefined) {
    const host = match.host.toLowerCase();
    tests.push((i) => i.host === host);
  }
  if (match.authority !== undefined) {
    const test = valueTest(match.authority, 'authority.regex');
    tests.push((i) => test(i.authority ?? i.host));
  }
  for (const h of match.headers ?? []) {
    const name = h.name.toLowerCase();
    const test = valueTest(h, `headers.${name}.regex`);
    tests.push((i) => {
      const v = i.headers[name];
      return test(Array.isArray(v) ? v.join(',') : v);
    });
  }
  const query = match.query ?? [];
  if (query.length > 0) {
    const compiled = query.map((q) => ({
      name: q.name,
      test: valueTest(q, `query.${q.name}.regex`),
    }));
    tests.push((i) => {
      const params = new URLSearchParams(i.query);
      return compiled.every((q) => q.test(params.get(q.name) ?? undefined));
    });
  }
  if (tests.length === 0) return () => true;
  return (input) => {
    for (const t of tests) if (!t(input)) return false;
    return true;
  };
}

/**
 * A route's hosts as one predicate on the request's host (lower case, no port), Istio's
 * ingress semantics: `*` is any host, `*.example.com` any name under example.com, anything else
 * that exact name (case-insensitive).
 */
export function compileHosts(hosts: readonly string[]): (input: MatchInput) => boolean {
  if (hosts.includes('*')) return () => true;
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const h of hosts) {
    const lower = h.toLowerCase();
    if (lower.startsWith('*.')) suffixes.push(lower.slice(1));
    else exact.add(lower);
  }
  return (i) =>
    exact.has(i.host) || suffixes.some((s) => i.host.endsWith(s) && i.host.length > s.length);
}

/** One compiled rule: its predicate and what it leads to. */
export interface RouteRule<R> {
  readonly matches: (input: MatchInput) => boolean;
  readonly route: R;
}

export interface RouteTableOptions<R> {
  readonly rules: readonly RouteRule<R>[];
  /** Host routing: `<service>.<domain>` goes to the service (undefined: off). */
  readonly domain?: string | undefined;
  /** The route for a host-routed service, made on first use. */
  readonly hostRoute?: ((service: string) => R) | undefined;
  /** Distinct host-routed services kept (an unbounded map would let random Hosts grow it). */
  readonly maxHostServices?: number | undefined;
}

/** What the engine needs of a route table (a gateway may swap the table behind it). */
export interface RouteMatcher<R> {
  /** The route for a request, or undefined (the caller answers 404). Never throws. */
  match(input: MatchInput): R | undefined;
}

/** Rules first, in order; then host routing. */
export class RouteTable<R> implements RouteMatcher<R> {
  readonly #rules: readonly RouteRule<R>[];
  readonly #suffix: string | undefined;
  readonly #hostRoute: ((service: string) => R) | undefined;
  readonly #hostRoutes = new Map<string, R>();
  readonly #maxHostServices: number;

  constructor(options: RouteTableOptions<R>) {
    this.#rules = options.rules;
    this.#suffix = options.domain === undefined ? undefined : `.${options.domain.toLowerCase()}`;
    this.#hostRoute = options.hostRoute;
    this.#maxHostServices = options.maxHostServices ?? 1024;
  }

  /** The route for a request, or undefined (the caller answers 404). Never throws. */
  match(input: MatchInput): R | undefined {
    for (const rule of this.#rules) if (rule.matches(input)) return rule.route;
    const suffix = this.#suffix;
    if (suffix === undefined || this.#hostRoute === undefined) return undefined;
    const host = input.host;
    if (host.length <= suffix.length || !host.endsWith(suffix)) return undefined;
    const service = host.slice(0, host.length - suffix.length);
    let route = this.#hostRoutes.get(service);
    if (route === undefined) {
      if (!SERVICE_NAME.test(service) || this.#hostRoutes.size >= this.#maxHostServices) {
        return undefined;
      }
      route = this.#hostRoute(service);
      this.#hostRoutes.set(service, route);
    }
    return route;
  }

  /** Drops the host route of `service` (made again on its next use). */
  forgetHost(service: string): void {
    this.#hostRoutes.delete(service);
  }
}
