/**
 * @module The Consul /v1/txn endpoint: KV and Service ops all or nothing in one store commit
 * (registry-txn.ts), Node and Check reads of this agent's node; 409 with `Errors` when an op
 * fails (nothing applied), 413 past 64 ops.
 */
import { LIMITS } from '../../protocol/limits.js';
import type { TxnError } from '../../registry/txn-types.js';
import { assertUtf8, rawBody } from '../body.js';
import { requireAcl } from '../acl/request-acl.js';
import type { ConsulContext } from './consul-context.js';
import { parseJsonBody } from './consul-body.js';
import { dirEntry } from './consul-kv-routes.js';
import { checkDatacenter } from './consul-query.js';
import { refuse } from './consul-refuse.js';
import { checkInputOf } from './consul-registration.js';
import { consulNode, nodeService, serviceChecks } from './consul-shapes.js';
import { parseConsulTxn } from './consul-txn.js';
import { ERROR_CODES, isMeshError } from '../../core/errors.js';

/** Adds the /v1/txn route to the context's router. */
export function registerConsulTxnRoutes(ctx: ConsulContext): void {
  const { registry, node, route, q, json, policy, ourNodeChecks } = ctx;

  route(['PUT'], '/txn', async (req, reply) => {
    checkDatacenter(q(req), node.datacenter);
    assertUtf8(req.headers['content-type']);
    let body: unknown;
    try {
      body = parseJsonBody(rawBody(req));
    } catch (err) {
      if (isMeshError(err, ERROR_CODES.VALIDATION))
        throw refuse(`Failed to parse body: ${err.message}`);
      throw err;
    }
    const ops = parseConsulTxn(body, {
      node,
      policy,
      maxValueBytes: LIMITS.maxKvValueBytes,
      checksOf: (id) =>
        registry.instanceDefinition(id)?.checks.map((c) => checkInputOf(c, policy.floors)),
    });
    for (const op of ops) {
      if (op.kind !== 'registry') continue;
      for (const [kind, name, access] of op.acl) requireAcl(req, kind, name, access);
      // A Service op on an id another service holds takes write on that one too.
      if (op.op.type === 'instance') {
        const id = 'id' in op.op ? op.op.id : (op.op.registration.id ?? '');
        const held = registry.instanceDefinition(id)?.service;
        if (held !== undefined)
          requireAcl(req, 'service', held, op.op.verb === 'get' ? 'read' : 'write');
      }
    }
    // Node and Check reads are answered here, from the view, as of the txn.
    const local = new Map<number, Record<string, unknown>>();
    const errors: TxnError[] = [];
    const checks = (): Record<string, unknown>[] => [
      ...ourNodeChecks(),
      ...registry.allInstances().flatMap((i) => serviceChecks(node, i)),
    ];
    ops.forEach((op, opIndex) => {
      if (op.kind === 'node-get') {
        requireAcl(req, 'node', node.nodeName, 'read');
        local.set(opIndex, { Node: consulNode(node) });
      } else if (op.kind === 'check-get') {
        const found = checks().find((c) => c.CheckID === op.checkId);
        if (found === undefined)
          errors.push({
            opIndex,
            what: `check ${JSON.stringify(op.checkId)} on node ${JSON.stringify(node.nodeName)} doesn't exist`,
          });
        else local.set(opIndex, { Check: found });
      }
    });
    const outcome = await registry.txn(
      ops.map((op, opIndex) => {
        if (op.kind === 'registry') return op.op;
        const failed = errors.find((e) => e.opIndex === opIndex);
        return failed === undefined ? { type: 'noop' } : { type: 'refused', what: failed.what };
      }),
    );
    if (!outcome.ok) {
      const errs = outcome.errors.map((e) => ({ OpIndex: e.opIndex, What: e.what }));
      return json(req, reply, { Results: null, Errors: errs }, undefined, 409);
    }
    const results: Record<string, unknown>[] = [];
    ops.forEach((_op, opIndex) => {
      const mine = local.get(opIndex);
      if (mine !== undefined) results.push(mine);
      for (const r of outcome.results) {
        if (r.opIndex !== opIndex) continue;
        results.push(
          r.type === 'kv' ? { KV: dirEntry(r.entry) } : { Service: nodeService(r.instance) },
        );
      }
    });
    return json(req, reply, { Results: results, Errors: null });
  });
}
