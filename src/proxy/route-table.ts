/**
 * @module The route table: compiled route rules (first match wins), then host routing
 * (`<service>.<domain>`). Matching allocates nothing for rules without query conditions or
 * regexes (re2js wraps each input it matches).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { SERVICE_NAME } from '../protocol/registration.js';
import { compileUserRegex } from '../protocol/user-regex.js';
import type { RouteMatchConfig } from './route-config.js';

/** The parts of a request the route table looks at. */
export interface MatchInput {
  readonly method: string;
  /** Lower case, without the port. */
  readonly host: string;
  /** The path without the query. */
  readonly path: string;
  /** The raw query (after "?"), '' for none. */
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
}

type ValueTest = (value: string | undefined) => boolean;

function valueTest(m: { exact?: string; regex?: string; present?: boolean }): ValueTest {
  if (m.exact !== undefined) {
    const exact = m.exact;
    return (v) => v === exact;
  }
  if (m.regex !== undefined) {
    // Anchored: a header regex describes the whole value, as in Envoy's safe_regex.
    const re = compileUserRegex(m.regex, 'regex');
    return (v) => v !== undefined && re.testExact(v);
  }
  const present = m.present === true;
  return (v) => (v !== undefined) === present;
}

/**
 * Compiles a route's match block into one predicate. Regexes are RE2 (linear-time) and anchored
 * at both ends; routeMatchSchema has already refused any pattern RE2 does not take.
 */
export function compileMatch(match: RouteMatchConfig): (input: MatchInput) => boolean {
  const tests: ((input: MatchInput) => boolean)[] = [];
  const path = match.path;
  if (path?.exact !== undefined) {
    const exact = path.exact;
    tests.push((i) => i.path === exact);
  } else if (path?.prefix !== undefined) {
    const prefix = path.prefix;
    tests.push((i) => i.path.startsWith(prefix));
  } else if (path?.regex !== undefined) {
    const re = compileUserRegex(path.regex, 'path.regex');
    tests.push((i) => re.testExact(i.path));
  }
  if (match.methods !== undefined) {
    const methods = new Set(match.methods);
    tests.push((i) => methods.has(i.method));
  }
  if (match.host !== undefined) {
    const host = match.host.toLowerCase();
    tests.push((i) => i.host === host);
  }
  for (const h of match.headers ?? []) {
    const name = h.name.toLowerCase();
    const test = valueTest(h);
    tests.push((i) => {
      const v = i.headers[name];
      return test(Array.isArray(v) ? v.join(',') : v);
    });
  }
  const query = match.query ?? [];
  if (query.length > 0) {
    const compiled = query.map((q) => ({ name: q.name, test: valueTest(q) }));
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
