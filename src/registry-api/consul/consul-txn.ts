/**
 * @module Consul's /v1/txn body read into registry transaction ops: KV verbs, Service verbs on
 * this agent's node, Node and Check reads. Whole-body problems are refused as Consul refuses
 * them (400 `Failed to parse body: ...`, 413 past 64 ops or a value past the KV limit); a
 * problem of one op becomes that op's error (Consul answers those 409 with `Errors`).
 */
import { ERROR_CODES, isMeshError } from '../../core/errors.js';
import type { ParsedCheck, ParsedRegistration } from '../../protocol/registration.js';
import type { TxnKvVerb, TxnOp } from '../../registry/txn-types.js';
import { hasControlChars } from '../../protocol/validation.js';
import {
  normaliseBody,
  SERVICE_SPEC as AGENT_SERVICE_SPEC,
  type BodySpec,
  type NormalisedBody,
} from './consul-body.js';
import { refuse } from './consul-refuse.js';
import {
  DEFAULT_CONSUL_CHECK_POLICY,
  registrationFromConsul,
  type ConsulCheckPolicy,
} from './consul-registration.js';
import type { ConsulNodeInfo } from './consul-shapes.js';

/** Consul's maxTxnOps: a txn of more ops is refused with 413. */
export const CONSUL_MAX_TXN_OPS = 64;

const KV_VERBS: readonly TxnKvVerb[] = [
  'set',
  'cas',
  'get',
  'get-tree',
  'check-index',
  'check-not-exists',
  'delete',
  'delete-tree',
  'delete-cas',
  'lock',
  'unlock',
  'check-session',
];
/** KV verbs that name a lock session (`Session`). */
const SESSION_VERBS = new Set(['lock', 'unlock', 'check-session']);
const TREE_VERBS = new Set(['get-tree', 'delete-tree']);

const KV_SPEC: BodySpec = {
  fields: {
    Verb: 'string',
    Key: 'string',
    Value: 'any',
    Flags: 'int',
    Index: 'int',
    Session: 'string',
    Namespace: 'string',
  },
};
const SERVICE_OP_SPEC: BodySpec = {
  fields: {
    Verb: 'string',
    Node: 'string',
    // A NodeService: the agent's service fields (checks are not part of it: ignored below).
    Service: {
      object: { fields: { ...AGENT_SERVICE_SPEC.fields, Service: 'string', ModifyIndex: 'int' } },
    },
  },
};
const NODE_SPEC: BodySpec = {
  fields: { Verb: 'string', Node: { object: { fields: { ID: 'string', Node: 'string' } } } },
};
const CHECK_SPEC: BodySpec = {
  fields: {
    Verb: 'string',
    Check: { object: { fields: { Node: 'string', CheckID: 'string', ModifyIndex: 'int' } } },
  },
};
const OP_SPEC: BodySpec = {
  fields: {
    KV: { object: KV_SPEC },
    Service: { object: SERVICE_OP_SPEC },
    Node: { object: NODE_SPEC },
    Check: { object: CHECK_SPEC },
  },
};

/** An ACL check an op needs: `[kind, name, access]`. */
export type TxnAclNeed = readonly ['kv' | 'service', string, 'read' | 'write'];

/** One parsed op: for the registry, or a read the adapter answers itself. */
export type ConsulTxnOp =
  | { readonly kind: 'registry'; readonly op: TxnOp; readonly acl: readonly TxnAclNeed[] }
  | { readonly kind: 'node-get' }
  | { readonly kind: 'check-get'; readonly checkId: string };

/** What the parser needs to know of the agent. */
export interface ConsulTxnContext {
  readonly node: ConsulNodeInfo;
  /** Largest KV value, in bytes (LIMITS.maxKvValueBytes). */
  readonly maxValueBytes: number;
  readonly policy?: ConsulCheckPolicy;
  /** The checks of an instance registered now (a Service set keeps them, as Consul does). */
  readonly checksOf?: (id: string) => readonly ParsedCheck[] | undefined;
}

/**
 * Reads a /v1/txn body (already JSON-parsed). Throws a Consul refusal (400/413) for what
 * Consul refuses before running anything; each op's own problem comes back as a `refused` op.
 * @example
 * parseConsulTxn([{ KV: { Verb: 'set', Key: 'a', Value: 'eA==' } }], ctx)
 * // [{ kind: 'registry', op: { type: 'kv', verb: 'set', key: 'a', value: <78>, flags: 0 }, ... }]
 */
export function parseConsulTxn(body: unknown, ctx: ConsulTxnContext): ConsulTxnOp[] {
  if (!Array.isArray(body))
    throw refuse(
      'Failed to parse body: json: cannot unmarshal object into Go value of type api.TxnOps',
    );
  if (body.length > CONSUL_MAX_TXN_OPS)
    throw refuse(
      `Transaction contains too many operations (${body.length} > ${CONSUL_MAX_TXN_OPS})`,
      413,
    );
  const ops = body.map((raw, i) => {
    let op: NormalisedBody;
    try {
      op = normaliseBody(raw, OP_SPEC, `[${i}]`);
    } catch (err) {
      throw decodeRefusal(err);
    }
    return op;
  });
  return ops.map((op) => {
    if (op.KV !== undefined) return kvOp(op.KV as NormalisedBody, ctx);
    if (op.Service !== undefined) return serviceOp(op.Service as NormalisedBody, ctx);
    if (op.Node !== undefined) return nodeOp(op.Node as NormalisedBody, ctx);
    if (op.Check !== undefined) return checkOp(op.Check as NormalisedBody, ctx);
    return refused('no operation specified');
  });
}

const refused = (what: string): ConsulTxnOp => ({
  kind: 'registry',
  op: { type: 'refused', what },
  acl: [],
});

function decodeRefusal(err: unknown): Error {
  if (isMeshError(err, ERROR_CODES.VALIDATION))
    return refuse(`Failed to parse body: ${err.message}`);
  return err as Error;
}

function kvOp(kv: NormalisedBody, ctx: ConsulTxnContext): ConsulTxnOp {
  const verb = (kv.Verb as string | undefined) ?? '';
  const key = (kv.Key as string | undefined) ?? '';
  const value = decodeValue(kv.Value, key, ctx.maxValueBytes);
  if (!(KV_VERBS as readonly string[]).includes(verb))
    return refused(`unknown KV verb ${JSON.stringify(verb)}`);
  const v = verb as TxnKvVerb;
  if (key === '' && !TREE_VERBS.has(v)) return refused('Must provide key');
  // The agent's own keys start with a control character too (catalog-view.ts).
  if (hasControlChars(key))
    return refused(`Invalid key ${JSON.stringify(key)}: control characters are not allowed`);
  const flags = (kv.Flags as number | undefined) ?? 0;
  const index = (kv.Index as number | undefined) ?? 0;
  if (flags < 0 || index < 0) return refused('Flags and Index must be >= 0');
  const session = (kv.Session as string | undefined) ?? '';
  if (SESSION_VERBS.has(v) && session === '') return refused(`${v} requires a Session`);
  const write = v !== 'get' && v !== 'get-tree' && !v.startsWith('check-');
  return {
    kind: 'registry',
    op: {
      type: 'kv',
      verb: v,
      key,
      flags,
      index,
      ...(value === undefined ? {} : { value }),
      ...(SESSION_VERBS.has(v) ? { session } : {}),
    },
    acl: [['kv', key, write ? 'write' : 'read']],
  };
}

/** A base64 Value (null: empty), as Consul decodes it; 413 past the KV value limit. */
function decodeValue(v: unknown, key: string, max: number): Uint8Array | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string')
    throw refuse(`Failed to parse body: unexpected value type: ${typeof v}`);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0)
    throw refuse('Failed to parse body: failed to decode value: illegal base64 data');
  const bytes = Buffer.from(v, 'base64');
  if (bytes.length > max)
    throw refuse(
      `Value for key ${JSON.stringify(key)} is too large (${bytes.length} > ${max} bytes)`,
      413,
    );
  return bytes;
}

function serviceOp(s: NormalisedBody, ctx: ConsulTxnContext): ConsulTxnOp {
  const verb = (s.Verb as string | undefined) ?? '';
  const nodeName = (s.Node as string | undefined) ?? '';
  const {
    Check: _check,
    Checks: _checks,
    ...svc
  } = (s.Service as NormalisedBody | undefined) ?? {};
  const id = (svc.ID as string | undefined) || ((svc.Service as string | undefined) ?? '');
  const index = (svc.ModifyIndex as number | undefined) ?? 0;
  if (!['get', 'set', 'cas', 'delete', 'delete-cas'].includes(verb))
    return refused(`unknown Service verb ${JSON.stringify(verb)}`);
  if (nodeName !== ctx.node.nodeName) {
    return refused(
      verb === 'get'
        ? `service ${JSON.stringify(id)} on node ${JSON.stringify(nodeName)} doesn't exist`
        : `Missing node registration: this agent serves only its own node ${JSON.stringify(ctx.node.nodeName)}`,
    );
  }
  if (id === '') return refused('Must provide a service ID');
  if (verb === 'get' || verb === 'delete' || verb === 'delete-cas') {
    return {
      kind: 'registry',
      op: { type: 'instance', verb, id, index },
      acl: [],
    };
  }
  let registration: ParsedRegistration;
  try {
    const checks = ctx.checksOf?.(id);
    registration = registrationFromConsul(svc, ctx.node, ctx.policy ?? DEFAULT_CONSUL_CHECK_POLICY);
    if (checks !== undefined && checks.length > 0)
      registration = { ...registration, checks: [...checks] };
  } catch (err) {
    if (isMeshError(err)) return refused(err.message);
    throw err;
  }
  return {
    kind: 'registry',
    op: { type: 'instance', verb: verb as 'set' | 'cas', registration, index },
    acl: [['service', registration.service, 'write']],
  };
}

function nodeOp(n: NormalisedBody, ctx: ConsulTxnContext): ConsulTxnOp {
  const verb = (n.Verb as string | undefined) ?? '';
  const name = ((n.Node as NormalisedBody | undefined)?.Node as string | undefined) ?? '';
  if (verb !== 'get')
    return refused(
      ['set', 'cas', 'delete', 'delete-cas'].includes(verb)
        ? `Node verb ${JSON.stringify(verb)} is not supported: an agent is one node, registered by the agent itself`
        : `unknown Node verb ${JSON.stringify(verb)}`,
    );
  if (name !== ctx.node.nodeName) return refused(`node ${JSON.stringify(name)} doesn't exist`);
  return { kind: 'node-get' };
}

function checkOp(c: NormalisedBody, ctx: ConsulTxnContext): ConsulTxnOp {
  const verb = (c.Verb as string | undefined) ?? '';
  const check = (c.Check as NormalisedBody | undefined) ?? {};
  const nodeName = (check.Node as string | undefined) ?? '';
  const checkId = (check.CheckID as string | undefined) ?? '';
  if (verb !== 'get')
    return refused(
      ['set', 'cas', 'delete', 'delete-cas'].includes(verb)
        ? `Check verb ${JSON.stringify(verb)} is not supported: register checks with their service (Service set keeps them) or /v1/agent/check/register`
        : `unknown Check verb ${JSON.stringify(verb)}`,
    );
  if (nodeName !== ctx.node.nodeName)
    return refused(
      `check ${JSON.stringify(checkId)} on node ${JSON.stringify(nodeName)} doesn't exist`,
    );
  return { kind: 'check-get', checkId };
}
