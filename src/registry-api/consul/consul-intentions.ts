/**
 * @module Consul Connect intentions mapped onto AuthorizationPolicy (issue 20). The intentions of
 * one destination service are kept in ONE AuthorizationPolicy, `consul-intentions-<destination>`
 * in the `default` namespace, labelled as managed here: its spec is what the sidecars enforce
 * (derived with Consul's precedence, below), and its annotations keep the intentions themselves
 * (action, description, meta, times), one per source. Pure functions: the routes
 * (consul-intention-routes.ts) read and write the policy through the catalog.
 *
 * Precedence (Consul's, for one destination): an intention for the exact source wins over the
 * wildcard (`*`) one; without either, the default decides (allow here: ACLs' default policy is
 * not consulted). As Istio evaluates DENY before ALLOW whatever their order, the derived policy
 * is one of:
 * - a wildcard `deny`: ALLOW only the exact sources allowed (none: a policy with no rules, which
 *   allows nothing);
 * - otherwise: DENY the exact sources denied (none: a DENY with no rules, which denies nothing).
 */
import { createHash } from 'node:crypto';
import type { MeshResource } from '../../protocol/mesh/resource.js';
import type { AuthorizationPolicySpec } from '../../protocol/mesh/specs.js';
import { SERVICE_NAME } from '../../protocol/registration.js';

/** The namespace intentions live in (Consul OSS has only `default`). */
export const INTENTION_NAMESPACE = 'default';
/** Label of the policies this module manages; others of the same name are not touched. */
export const MANAGED_LABEL = 'meshwork.dev/managed-by';
export const MANAGED_VALUE = 'consul-intentions';
/** Annotation key prefix: one annotation per source (`intentions.meshwork.dev/<source>`). */
const ANNOTATION_PREFIX = 'intentions.meshwork.dev/';
/** The annotation name of the wildcard source (`*` is no label key; a dot is in no service name). */
const WILDCARD_KEY = 'all.sources';

export type IntentionAction = 'allow' | 'deny';

/** One intention as stored (the source and destination are the annotation key and the policy). */
export interface IntentionRecord {
  readonly action: IntentionAction;
  readonly description: string;
  readonly meta: Readonly<Record<string, string>>;
  /** RFC 3339. */
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface Intention extends IntentionRecord {
  readonly source: string;
  readonly destination: string;
}

/** The policy name of a destination's intentions. */
export function intentionPolicyName(destination: string): string {
  return `consul-intentions-${destination}`;
}

/** A source or destination as intentions name them: a service name, or `*` for a source. */
export function intentionNameProblem(
  field: string,
  value: unknown,
  wildcard: boolean,
): string | undefined {
  if (typeof value !== 'string' || value === '') return `${field}: must be a service name`;
  if (value === '*')
    return wildcard
      ? undefined
      : `${field}: '*' is not supported (write an AuthorizationPolicy without a selector)`;
  return SERVICE_NAME.test(value)
    ? undefined
    : `${field}: must be a service name (lower-case letters, digits and -, at most 63)`;
}

/**
 * The ID of the intention from `source` to `destination`: a UUID-shaped digest of the pair, so
 * the same intention keeps its ID across agents and restarts without being stored.
 */
export function intentionId(source: string, destination: string): string {
  const h = createHash('sha256')
    .update(`${INTENTION_NAMESPACE}/${source}\n${INTENTION_NAMESPACE}/${destination}`)
    .digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Consul's precedence of an intention in the default namespace: exact 9, wildcard source 8. */
export function intentionPrecedence(source: string): number {
  return source === '*' ? 8 : 9;
}

const annotationKey = (source: string): string =>
  ANNOTATION_PREFIX + (source === '*' ? WILDCARD_KEY : source);

/** Whether `r` is a policy this module manages. */
export function isIntentionPolicy(r: MeshResource): boolean {
  return r.kind === 'AuthorizationPolicy' && r.metadata.labels?.[MANAGED_LABEL] === MANAGED_VALUE;
}

/** The intentions kept in a managed policy (`destination` is its selector's app). */
export function intentionsOf(r: MeshResource): Intention[] {
  const destination = (r.spec as AuthorizationPolicySpec).selector?.matchLabels?.app;
  if (destination === undefined) return [];
  const out: Intention[] = [];
  for (const [key, value] of Object.entries(r.metadata.annotations ?? {})) {
    if (!key.startsWith(ANNOTATION_PREFIX)) continue;
    const name = key.slice(ANNOTATION_PREFIX.length);
    const record = parseRecord(value);
    if (record === undefined) continue;
    out.push({ source: name === WILDCARD_KEY ? '*' : name, destination, ...record });
  }
  return out.sort(byPrecedence);
}

/** Highest precedence first, then by source name. */
export function byPrecedence(a: Intention, b: Intention): number {
  const p = intentionPrecedence(b.source) - intentionPrecedence(a.source);
  if (p !== 0) return p;
  return a.source < b.source ? -1 : a.source > b.source ? 1 : 0;
}

function parseRecord(text: string): IntentionRecord | undefined {
  try {
    const v = JSON.parse(text) as Partial<IntentionRecord>;
    if (v.action !== 'allow' && v.action !== 'deny') return undefined;
    return {
      action: v.action,
      description: typeof v.description === 'string' ? v.description : '',
      meta: typeof v.meta === 'object' && v.meta !== null ? v.meta : {},
      createdAt: typeof v.createdAt === 'string' ? v.createdAt : '',
      updatedAt: typeof v.updatedAt === 'string' ? v.updatedAt : '',
    };
  } catch {
    return undefined;
  }
}

/** The principal pattern of a source service, whatever the trust domain. */
const principalOfSource = (source: string): string => `*/ns/${INTENTION_NAMESPACE}/sa/${source}`;

/**
 * The managed policy holding `intentions` (all for `destination`), with the spec derived by
 * Consul's precedence (see the module comment); undefined when none is left.
 */
export function intentionPolicy(
  destination: string,
  intentions: readonly Intention[],
): MeshResource<'AuthorizationPolicy'> | undefined {
  if (intentions.length === 0) return undefined;
  const annotations: Record<string, string> = {};
  for (const i of [...intentions].sort(byPrecedence)) {
    const { action, description, meta, createdAt, updatedAt } = i;
    annotations[annotationKey(i.source)] = JSON.stringify({
      action,
      description,
      meta,
      createdAt,
      updatedAt,
    });
  }
  const exact = (action: IntentionAction) =>
    intentions
      .filter((i) => i.source !== '*' && i.action === action)
      .map((i) => principalOfSource(i.source))
      .sort();
  const wildcard = intentions.find((i) => i.source === '*')?.action;
  const selector = { matchLabels: { app: destination } };
  let spec: AuthorizationPolicySpec;
  if (wildcard === 'deny') {
    const allowed = exact('allow');
    spec = {
      selector,
      action: 'ALLOW',
      ...(allowed.length === 0 ? {} : { rules: [{ from: [{ source: { principals: allowed } }] }] }),
    };
  } else {
    const denied = exact('deny');
    spec = {
      selector,
      action: 'DENY',
      ...(denied.length === 0 ? {} : { rules: [{ from: [{ source: { principals: denied } }] }] }),
    };
  }
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: {
      name: intentionPolicyName(destination),
      namespace: INTENTION_NAMESPACE,
      labels: { [MANAGED_LABEL]: MANAGED_VALUE },
      annotations,
    },
    spec,
  };
}

/**
 * Whether `source` may call `destination` by these intentions (Consul's `check` and the
 * authorize endpoint): the highest-precedence intention that matches decides, else `dflt`.
 */
export function intentionAllows(
  intentions: readonly Intention[],
  source: string,
  dflt: boolean,
): { readonly allowed: boolean; readonly by?: Intention } {
  const by =
    intentions.find((i) => i.source === source) ?? intentions.find((i) => i.source === '*');
  return by === undefined ? { allowed: dflt } : { allowed: by.action === 'allow', by };
}
