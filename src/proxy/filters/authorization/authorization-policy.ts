/**
 * @module AuthorizationPolicy evaluation with Istio's semantics, for the sidecar's inbound side:
 * compiled once per snapshot from the policies selecting the service (`inbound.authorization`),
 * evaluated per request as a pure function of the request's attributes, allocating nothing.
 *
 * Order (Istio's, without CUSTOM): a matching DENY policy denies; else with no ALLOW policy the
 * request is allowed; else it is allowed only if some ALLOW policy matches. AUDIT policies never
 * change the decision; the caller logs the ones that match. A policy matches when one of its
 * rules does; a policy without rules (`spec: {}`) matches nothing, so an ALLOW one denies all. A
 * rule matches when its `from` (any source), `to` (any operation) and `when` (every condition)
 * all do; an absent part matches everything. Within a source or an operation every field set
 * must match: a list field when one of its values matches, a `notX` field when none does. An
 * attribute the request does not have (a principal without mTLS, a header not sent) matches no
 * value (not even `*`) and so satisfies every `notX`, as in Istio.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type {
  AuthorizationCondition,
  AuthorizationOperation,
  AuthorizationPolicySpec,
  AuthorizationRule,
  AuthorizationSource,
} from '../../../protocol/mesh/specs.js';
import { parseIpBlock, parseIpCached, type IpBlock } from './ip-match.js';

/** What a policy sees of one request: the sidecar's filter fills one per request. */
export interface AuthorizationRequest {
  readonly method: string;
  /** The path without its query, normalized (normalize-path.ts). */
  readonly path: string;
  /** The authority as sent, lower case, with its port if it had one. */
  readonly authority: string;
  /** The authority's host: lower case, without the port. */
  readonly host: string;
  readonly headers: IncomingHttpHeaders;
  /** The downstream connection's peer address (`source.ip`, `ipBlocks`). */
  readonly sourceIp: string;
  /** The address the connection reached (`destination.ip`). */
  readonly destinationIp: string;
  /** The workload's port: the app's (`ports`, `destination.port`). */
  readonly destinationPort: number;
  /** The verified mTLS peer's principal (`td/ns/N/sa/S`); undefined for plaintext. */
  readonly principal: string | undefined;
  /** The verified mTLS peer's namespace; undefined for plaintext. */
  readonly namespace: string | undefined;
  /** The TLS server name the client asked for; undefined for plaintext. */
  readonly sni: string | undefined;
}

/** A decision. Constant objects: compare them, do not build them. */
export type AuthorizationVerdict =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      /** DENY: a DENY policy matched; ALLOW: ALLOW policies exist and none matched. */
      readonly action: 'DENY' | 'ALLOW';
      /** The DENY policy that matched, `<namespace>/<name>`; absent for ALLOW. */
      readonly policy?: string;
    };

/** The verdict of an allowed request. */
export const ALLOWED: AuthorizationVerdict = Object.freeze({ allowed: true });
/** The verdict of a request no ALLOW policy matched. */
export const NO_ALLOW_MATCHED: AuthorizationVerdict = Object.freeze({
  allowed: false,
  action: 'ALLOW',
});

type Predicate = (r: AuthorizationRequest) => boolean;

/** One compiled policy. */
export interface CompiledPolicy {
  /** `<namespace>/<name>`. */
  readonly name: string;
  readonly action: 'ALLOW' | 'DENY' | 'AUDIT';
  /** Whether the request matches one of its rules. */
  readonly matches: Predicate;
  /** What a DENY policy answers when it matches. */
  readonly verdict: AuthorizationVerdict;
}

/** The policies of one snapshot, compiled. */
export interface CompiledAuthorization {
  readonly policies: readonly CompiledPolicy[];
  /** No policy at all: nothing to evaluate (and the path is left as it is). */
  readonly empty: boolean;
  /** The decision for `r`. Pure; allocates nothing. */
  evaluate(r: AuthorizationRequest): AuthorizationVerdict;
  /** The AUDIT policies `r` matches (undefined: none). Allocates only when one does. */
  audits(r: AuthorizationRequest): string[] | undefined;
}

/** A policy as the snapshot carries it: its key (`AuthorizationPolicy/<ns>/<name>`) and spec. */
export interface AuthorizationPolicyEntry {
  readonly key: string;
  readonly spec: AuthorizationPolicySpec;
}

const NEVER: Predicate = () => false;
const ALWAYS: Predicate = () => true;

/** A list of Istio string patterns, matched as one: exact, `abc*`, `*abc`, `*` (present). */
class StringPatterns {
  readonly #exact = new Set<string>();
  readonly #prefixes: string[] = [];
  readonly #suffixes: string[] = [];
  #present = false;

  constructor(values: readonly string[], lower = false) {
    for (const raw of values) {
      const v = lower ? raw.toLowerCase() : raw;
      // Istio's order: "*" alone is presence, a leading "*" a suffix, a trailing one a prefix.
      if (v === '*') this.#present = true;
      else if (v.startsWith('*')) this.#suffixes.push(v.slice(1));
      else if (v.endsWith('*')) this.#prefixes.push(v.slice(0, -1));
      else this.#exact.add(v);
    }
  }

  matches(v: string | undefined): boolean {
    if (v === undefined) return false;
    if (this.#present || this.#exact.has(v)) return true;
    for (const p of this.#prefixes) if (v.startsWith(p)) return true;
    for (const s of this.#suffixes) if (v.endsWith(s)) return true;
    return false;
  }
}

/** Collects the problems of one policy, each under its field's path. */
class Problems {
  readonly list: string[] = [];
  constructor(readonly key: string) {}
  add(path: string, reason: string): void {
    this.list.push(`inbound.authorization ${this.key}: ${path}: ${reason}`);
  }
}

/** `v` as a list of strings, or a problem. */
function strings(v: unknown, path: string, problems: Problems): readonly string[] | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  problems.add(path, 'must be a list of strings');
  return undefined;
}

/**
 * The predicate of one list field and its `notX` twin over one attribute: the list (when set)
 * must match, the not-list (when set) must not.
 */
function field<T>(
  get: (r: AuthorizationRequest) => T,
  matchesAny: ((v: T) => boolean) | undefined,
  matchesNone: ((v: T) => boolean) | undefined,
): Predicate | undefined {
  if (matchesAny === undefined && matchesNone === undefined) return undefined;
  if (matchesNone === undefined) return (r) => (matchesAny as (v: T) => boolean)(get(r));
  if (matchesAny === undefined) return (r) => !matchesNone(get(r));
  return (r) => {
    const v = get(r);
    return matchesAny(v) && !matchesNone(v);
  };
}

/** Every predicate holds (none: always). */
function all(preds: readonly Predicate[]): Predicate {
  if (preds.length === 0) return ALWAYS;
  if (preds.length === 1) return preds[0] as Predicate;
  return (r) => {
    for (const p of preds) if (!p(r)) return false;
    return true;
  };
}

/** One predicate holds (none: never). */
function any(preds: readonly Predicate[]): Predicate {
  if (preds.length === 0) return NEVER;
  if (preds.length === 1) return preds[0] as Predicate;
  return (r) => {
    for (const p of preds) if (p(r)) return true;
    return false;
  };
}

const patterns = (values: readonly string[] | undefined, lower = false) => {
  if (values === undefined) return undefined;
  const p = new StringPatterns(values, lower);
  return (v: string | undefined) => p.matches(v);
};

function ipBlocks(
  values: readonly string[] | undefined,
  path: string,
  problems: Problems,
): ((ip: string) => boolean) | undefined {
  if (values === undefined) return undefined;
  const blocks: IpBlock[] = [];
  values.forEach((v, i) => {
    const b = parseIpBlock(v);
    if (typeof b === 'string') problems.add(`${path}[${i}]`, b);
    else blocks.push(b);
  });
  return (ip) => {
    const parsed = parseIpCached(ip);
    if (parsed === undefined) return false;
    for (const b of blocks) if (b.matches(parsed)) return true;
    return false;
  };
}

function ports(
  values: readonly string[] | undefined,
  path: string,
  problems: Problems,
): ((port: number) => boolean) | undefined {
  if (values === undefined) return undefined;
  const set = new Set<number>();
  values.forEach((v, i) => {
    if (/^\d{1,5}$/.test(v) && Number(v) >= 1 && Number(v) <= 65_535) set.add(Number(v));
    else problems.add(`${path}[${i}]`, `"${v}" is not a port number 1..65535`);
  });
  return (port) => set.has(port);
}

/** Host patterns: those with a port match the authority, the others the port-less host. */
function hosts(values: readonly string[] | undefined): Predicate | undefined {
  if (values === undefined) return undefined;
  const withPort = values.filter((v) => /:\d+$/.test(v) && !v.endsWith(']'));
  const byAuthority = patterns(withPort, true) as (v: string) => boolean;
  const byHost = patterns(
    values.filter((v) => !withPort.includes(v)),
    true,
  ) as (v: string) => boolean;
  return (r) => byHost(r.host) || (withPort.length > 0 && byAuthority(r.authority));
}

const SOURCE_FIELDS = new Set([
  'principals',
  'notPrincipals',
  'namespaces',
  'notNamespaces',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
]);

const JWT_REASON =
  'not supported: Meshwork has no request authentication (JWT, RequestAuthentication); refused rather than ignored';

function compileSource(s: AuthorizationSource, path: string, problems: Problems): Predicate {
  for (const k of Object.keys(s))
    if (!SOURCE_FIELDS.has(k))
      problems.add(
        `${path}.${k}`,
        k === 'requestPrincipals' || k === 'notRequestPrincipals' ? JWT_REASON : 'unknown field',
      );
  const list = (k: keyof AuthorizationSource) => strings(s[k], `${path}.${k}`, problems);
  const ip = (k: keyof AuthorizationSource) => ipBlocks(list(k), `${path}.${k}`, problems);
  const preds = [
    field((r) => r.principal, patterns(list('principals')), patterns(list('notPrincipals'))),
    field((r) => r.namespace, patterns(list('namespaces')), patterns(list('notNamespaces'))),
    // Without a trusted X-Forwarded-For, the remote address is the peer's: remoteIpBlocks are
    // ipBlocks (Istio's differ only behind a proxy it is told to trust).
    field((r) => r.sourceIp, ip('ipBlocks'), ip('notIpBlocks')),
    field((r) => r.sourceIp, ip('remoteIpBlocks'), ip('notRemoteIpBlocks')),
  ];
  return all(preds.filter((p): p is Predicate => p !== undefined));
}

const OPERATION_FIELDS = new Set([
  'hosts',
  'notHosts',
  'ports',
  'notPorts',
  'methods',
  'notMethods',
  'paths',
  'notPaths',
]);

/** Istio's path templates (`{*}`, `{**}`): not supported, refused rather than matched literally. */
function checkPaths(values: readonly string[] | undefined, path: string, problems: Problems): void {
  values?.forEach((v, i) => {
    if (v.includes('{') || v.includes('}'))
      problems.add(`${path}[${i}]`, `"${v}": path templates ({*}, {**}) are not supported`);
  });
}

function compileOperation(o: AuthorizationOperation, path: string, problems: Problems): Predicate {
  for (const k of Object.keys(o))
    if (!OPERATION_FIELDS.has(k)) problems.add(`${path}.${k}`, 'unknown field');
  const list = (k: keyof AuthorizationOperation) => strings(o[k], `${path}.${k}`, problems);
  const port = (k: keyof AuthorizationOperation) => ports(list(k), `${path}.${k}`, problems);
  checkPaths(list('paths'), `${path}.paths`, problems);
  checkPaths(list('notPaths'), `${path}.notPaths`, problems);
  const notHosts = hosts(list('notHosts'));
  const preds = [
    hosts(list('hosts')),
    notHosts && ((r: AuthorizationRequest) => !notHosts(r)),
    field((r) => r.destinationPort, port('ports'), port('notPorts')),
    field((r) => r.method, patterns(list('methods')), patterns(list('notMethods'))),
    field((r) => r.path, patterns(list('paths')), patterns(list('notPaths'))),
  ];
  return all(preds.filter((p): p is Predicate => p !== undefined));
}

const HEADER_KEY = /^request\.headers\[([!#$%&'*+.^_`|~0-9A-Za-z-]{1,256})\]$/;

/** A request header's value as one string (repeated ones joined, as node joins most). */
function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function compileCondition(c: AuthorizationCondition, path: string, problems: Problems): Predicate {
  for (const k of Object.keys(c))
    if (k !== 'key' && k !== 'values' && k !== 'notValues')
      problems.add(`${path}.${k}`, 'unknown field');
  const values = strings(c.values, `${path}.values`, problems);
  const notValues = strings(c.notValues, `${path}.notValues`, problems);
  if (values === undefined && notValues === undefined)
    problems.add(path, 'must set values or notValues');
  const key = typeof c.key === 'string' ? c.key : '';
  const header = HEADER_KEY.exec(key);
  if (header !== null) {
    const name = (header[1] as string).toLowerCase();
    return (
      field((r) => headerValue(r.headers, name), patterns(values), patterns(notValues)) ?? NEVER
    );
  }
  const ip = (get: (r: AuthorizationRequest) => string) =>
    field(
      get,
      ipBlocks(values, `${path}.values`, problems),
      ipBlocks(notValues, `${path}.notValues`, problems),
    );
  const text = (get: (r: AuthorizationRequest) => string | undefined) =>
    field(get, patterns(values), patterns(notValues));
  let pred: Predicate | undefined;
  switch (key) {
    // Without a trusted X-Forwarded-For, remote.ip is the peer's address too.
    case 'source.ip':
    case 'remote.ip':
      pred = ip((r) => r.sourceIp);
      break;
    case 'destination.ip':
      pred = ip((r) => r.destinationIp);
      break;
    case 'source.namespace':
      pred = text((r) => r.namespace);
      break;
    case 'source.principal':
      pred = text((r) => r.principal);
      break;
    case 'connection.sni':
      pred = text((r) => r.sni);
      break;
    case 'destination.port':
      pred = field(
        (r) => r.destinationPort,
        ports(values, `${path}.values`, problems),
        ports(notValues, `${path}.notValues`, problems),
      );
      break;
    default:
      problems.add(
        `${path}.key`,
        `"${key}" is not supported (request.headers[<name>], source.ip, remote.ip, ` +
          'source.namespace, source.principal, destination.ip, destination.port, connection.sni)',
      );
  }
  return pred ?? NEVER;
}

/** `v` as a list of objects, or a problem. */
function objects<T>(v: unknown, path: string, problems: Problems): readonly T[] | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v) && v.every((o) => typeof o === 'object' && o !== null)) return v as T[];
  problems.add(path, 'must be a list of objects');
  return undefined;
}

function compileRule(rule: AuthorizationRule, path: string, problems: Problems): Predicate {
  for (const k of Object.keys(rule))
    if (k !== 'from' && k !== 'to' && k !== 'when') problems.add(`${path}.${k}`, 'unknown field');
  const from = objects<{ source: AuthorizationSource }>(rule.from, `${path}.from`, problems);
  const to = objects<{ operation: AuthorizationOperation }>(rule.to, `${path}.to`, problems);
  const when = objects<AuthorizationCondition>(rule.when, `${path}.when`, problems);
  const parts: Predicate[] = [];
  if (from !== undefined)
    parts.push(
      any(from.map((f, i) => compileSource(f.source ?? {}, `${path}.from[${i}].source`, problems))),
    );
  if (to !== undefined)
    parts.push(
      any(
        to.map((t, i) =>
          compileOperation(t.operation ?? {}, `${path}.to[${i}].operation`, problems),
        ),
      ),
    );
  if (when !== undefined)
    parts.push(all(when.map((c, i) => compileCondition(c, `${path}.when[${i}]`, problems))));
  return all(parts);
}

/** `AuthorizationPolicy/<ns>/<name>` -> `<ns>/<name>`. */
export function policyName(key: string): string {
  return key.startsWith('AuthorizationPolicy/') ? key.slice('AuthorizationPolicy/'.length) : key;
}

function compilePolicy(entry: AuthorizationPolicyEntry, problems: Problems): CompiledPolicy {
  const name = policyName(entry.key);
  const spec: Partial<AuthorizationPolicySpec> =
    typeof entry.spec === 'object' && entry.spec !== null ? entry.spec : {};
  const action = spec.action ?? 'ALLOW';
  if (action === 'CUSTOM')
    problems.add(
      'spec.action',
      `CUSTOM (provider "${spec.provider?.name ?? ''}") is not supported: Meshwork has no external authorizer; refused rather than ignored`,
    );
  else if (action !== 'ALLOW' && action !== 'DENY' && action !== 'AUDIT')
    problems.add('spec.action', `"${String(action)}" is not ALLOW, DENY, AUDIT or CUSTOM`);
  const rules = objects<AuthorizationRule>(spec.rules, 'spec.rules', problems) ?? [];
  // No rules: the policy matches nothing (an ALLOW one then denies everything).
  const matches = any(rules.map((rule, i) => compileRule(rule, `spec.rules[${i}]`, problems)));
  const kept = action === 'DENY' || action === 'AUDIT' ? action : 'ALLOW';
  const verdict: AuthorizationVerdict =
    kept === 'DENY' ? Object.freeze({ allowed: false, action: 'DENY', policy: name }) : ALLOWED;
  return { name, action: kept, matches, verdict };
}

/**
 * Compiles the policies of a snapshot (in their order, which names the DENY policy reported when
 * several match), or answers every problem (CUSTOM, JWT fields, unknown condition keys, bad
 * blocks or ports), each naming the policy and field: the sidecar NACKs those. Never throws.
 */
export function compileAuthorization(
  entries: readonly AuthorizationPolicyEntry[],
): CompiledAuthorization | { readonly problems: readonly string[] } {
  const problems: string[] = [];
  const policies = entries.map((e) => {
    const p = new Problems(String(e.key));
    const compiled = compilePolicy(e, p);
    problems.push(...p.list);
    return compiled;
  });
  if (problems.length > 0) return { problems };
  const deny = policies.filter((p) => p.action === 'DENY');
  const allow = policies.filter((p) => p.action === 'ALLOW');
  const audit = policies.filter((p) => p.action === 'AUDIT');
  return {
    policies,
    empty: policies.length === 0,
    evaluate(r: AuthorizationRequest): AuthorizationVerdict {
      for (const p of deny) if (p.matches(r)) return p.verdict;
      if (allow.length === 0) return ALLOWED;
      for (const p of allow) if (p.matches(r)) return ALLOWED;
      return NO_ALLOW_MATCHED;
    },
    audits(r: AuthorizationRequest): string[] | undefined {
      let out: string[] | undefined;
      for (const p of audit) if (p.matches(r)) (out ??= []).push(p.name);
      return out;
    },
  };
}

/** Whether compileAuthorization answered problems. */
export function isAuthorizationProblems(
  c: CompiledAuthorization | { readonly problems: readonly string[] },
): c is { readonly problems: readonly string[] } {
  return 'problems' in c;
}
