/**
 * @module Authorizers from rules: Consul's precedence (an exact rule beats every prefix rule, the
 * longest prefix wins, deny beats the rest within one rule), then the agent's default policy.
 */
import type { AclAccess, AclDecision, AclResourceKind, Authorizer } from './acl-contract.js';
import type {
  AclDisposition,
  AclScalarKind,
  AclSegmentRules,
  AclSegmentedKind,
  ParsedRules,
} from './acl-rules.js';

/** What a token gets when no rule of its own matches (`acl.defaultPolicy`). */
export type AclDefaultPolicy = 'allow' | 'deny';

const ALLOWED: AclDecision = Object.freeze({ allowed: true });

/** Decisions one Authorizer remembers (it lives until the ACL document changes). */
const MAX_CACHED_DECISIONS = 4_096;

/** The permission a 403 names: `service:payments write`, `key:app/x read`, `mesh write`. */
export function permissionName(kind: AclResourceKind, name: string, access: AclAccess): string {
  switch (kind) {
    case 'mesh':
    case 'acl':
    case 'operator':
      return `${kind} ${access}`;
    case 'kv':
      return `key:${name} ${access}`;
    default:
      return `${kind}:${name} ${access}`;
  }
}

function denied(kind: AclResourceKind, name: string, access: AclAccess): AclDecision {
  return Object.freeze({ allowed: false, missing: permissionName(kind, name, access) });
}

/** A segmented resource's rules compiled for lookups: exact map, prefixes longest first. */
interface CompiledSegment {
  readonly exact: ReadonlyMap<string, AclDisposition>;
  readonly prefixes: readonly (readonly [string, AclDisposition])[];
}

function compileSegment(rules: AclSegmentRules): CompiledSegment {
  return {
    exact: new Map(rules.exact),
    prefixes: [...rules.prefix].sort((a, b) => b[0].length - a[0].length),
  };
}

function lookup(seg: CompiledSegment, name: string): AclDisposition | undefined {
  const exact = seg.exact.get(name);
  if (exact !== undefined) return exact;
  for (const [prefix, d] of seg.prefixes) if (name.startsWith(prefix)) return d;
  return undefined;
}

function grants(d: AclDisposition, access: AclAccess): boolean {
  return d === 'write' || (d === 'read' && access === 'read');
}

/**
 * The Authorizer of merged rules. Without a matching rule the default policy decides; `allow`
 * never grants `acl` (as Consul's allow-all: managing ACLs always takes a rule).
 */
export function rulesAuthorizer(
  accessorId: string,
  rules: ParsedRules,
  defaultPolicy: AclDefaultPolicy,
): Authorizer {
  const seg: Record<AclSegmentedKind, CompiledSegment> = {
    service: compileSegment(rules.segmented.service),
    kv: compileSegment(rules.segmented.kv),
    node: compileSegment(rules.segmented.node),
    agent: compileSegment(rules.segmented.agent),
    session: compileSegment(rules.segmented.session),
    event: compileSegment(rules.segmented.event),
    query: compileSegment(rules.segmented.query),
  };
  const scalar: Partial<Record<AclScalarKind, AclDisposition>> = { ...rules.scalar };
  // Consul: without a mesh rule, the operator rule decides mesh.
  if (scalar.mesh === undefined && scalar.operator !== undefined) scalar.mesh = scalar.operator;
  const fallback = (kind: AclResourceKind): boolean => defaultPolicy === 'allow' && kind !== 'acl';
  const decide = (kind: AclResourceKind, name: string, access: AclAccess): AclDecision => {
    const d =
      kind === 'mesh' || kind === 'acl' || kind === 'operator'
        ? scalar[kind]
        : lookup(seg[kind], name);
    if (d === undefined) return fallback(kind) ? ALLOWED : denied(kind, name, access);
    return grants(d, access) ? ALLOWED : denied(kind, name, access);
  };
  // Decisions by resource: a request asks about the same few names again and again, and a token
  // with many prefix rules would scan them each time. Bounded: names come from clients.
  const decisions = new Map<string, AclDecision>();
  return {
    accessorId,
    check(kind, name, access) {
      const key = `${access}:${kind}:${typeof name === 'string' ? name : ''}`;
      let decision = decisions.get(key);
      if (decision === undefined) {
        decision = decide(kind, typeof name === 'string' ? name : '', access);
        if (decisions.size >= MAX_CACHED_DECISIONS) decisions.clear();
        decisions.set(key, decision);
      }
      return decision;
    },
  };
}

/** The Authorizer of a management token (the global-management policy): everything. */
export function managementAuthorizer(accessorId: string): Authorizer {
  return { accessorId, check: () => ALLOWED };
}

/**
 * The Authorizer of a secret no token has: nothing is allowed (Consul: 403 "ACL not found").
 * `unknownToken` lets the API say so.
 */
export function unknownTokenAuthorizer(): Authorizer & { readonly unknownToken: true } {
  return {
    accessorId: 'unknown',
    unknownToken: true,
    check: (kind, name, access) => denied(kind, name, access),
  };
}

/** Whether `auth` is the Authorizer of a secret no token has. */
export function isUnknownToken(auth: Authorizer): boolean {
  return (auth as { unknownToken?: boolean }).unknownToken === true;
}
