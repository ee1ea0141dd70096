/**
 * @module The Consul Connect intention endpoints (`/v1/connect/intentions...`) and
 * `/v1/agent/connect/authorize`, over the AuthorizationPolicies of consul-intentions.ts: an
 * intention written here is enforced by the destination's sidecars like any policy.
 */
import type { FastifyRequest } from 'fastify';
import { parseSpiffeId } from '../../protocol/mesh/ca.js';
import {
  meshResourceKey,
  type MeshResourceKey,
  type StoredMeshResource,
} from '../../protocol/mesh/resource.js';
import { requireAcl } from '../acl/request-acl.js';
import type { BodySpec, NormalisedBody } from './consul-body.js';
import type { ConsulContext } from './consul-context.js';
import {
  INTENTION_NAMESPACE,
  byPrecedence,
  intentionAllows,
  intentionId,
  intentionNameProblem,
  intentionPolicy,
  intentionPolicyName,
  intentionPrecedence,
  intentionsOf,
  isIntentionPolicy,
  type Intention,
  type IntentionAction,
} from './consul-intentions.js';
import { first } from './consul-query.js';
import { refuse } from './consul-refuse.js';

const INTENTION_SPEC: BodySpec = {
  fields: {
    SourceName: 'string',
    SourceNS: 'string',
    DestinationName: 'string',
    DestinationNS: 'string',
    SourceType: 'string',
    Action: 'string',
    Description: 'string',
    Meta: 'stringMap',
    Permissions: 'any',
  },
};

const AUTHORIZE_SPEC: BodySpec = {
  fields: { Target: 'string', ClientCertURI: 'string', ClientCertSerial: 'string' },
};

/** Consul's default when no intention matches, with ACLs off (Meshwork does not consult ACLs). */
const DEFAULT_ALLOW = true;

/** Adds the intention routes and the authorize endpoint to the context's router. */
export function registerConsulIntentionRoutes(ctx: ConsulContext): void {
  const { registry, route, json, meta, q, decode, param } = ctx;

  const policyKey = (destination: string): MeshResourceKey =>
    `AuthorizationPolicy/${INTENTION_NAMESPACE}/${intentionPolicyName(destination)}`;

  /** Every managed policy, with its intentions. */
  const managed = (): { stored: StoredMeshResource; intentions: Intention[] }[] =>
    registry
      .meshResources('AuthorizationPolicy')
      .filter((s) => isIntentionPolicy(s.resource))
      .map((stored) => ({ stored, intentions: intentionsOf(stored.resource) }));

  const all = () =>
    managed().flatMap(({ stored, intentions }) => intentions.map((i) => ({ i, stored })));

  const forDestination = (destination: string) => {
    const stored = registry.meshResource(policyKey(destination));
    if (stored !== undefined && !isIntentionPolicy(stored.resource))
      throw refuse(
        `AuthorizationPolicy ${meshResourceKey(stored.resource)} exists and is not managed by the intentions API: delete or rename it first`,
        409,
      );
    return { stored, intentions: stored === undefined ? [] : intentionsOf(stored.resource) };
  };

  const toConsul = (i: Intention, stored: StoredMeshResource | undefined) => ({
    ID: intentionId(i.source, i.destination),
    Description: i.description,
    SourceNS: INTENTION_NAMESPACE,
    SourceName: i.source,
    DestinationNS: INTENTION_NAMESPACE,
    DestinationName: i.destination,
    SourceType: 'consul',
    Action: i.action,
    Meta: i.meta,
    Precedence: intentionPrecedence(i.source),
    CreatedAt: i.createdAt,
    UpdatedAt: i.updatedAt,
    CreateIndex: stored?.createIndex ?? 0,
    ModifyIndex: stored?.modifyIndex ?? 0,
  });

  // Writes read, change and put one policy: serialised within this agent (see docs).
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  /** Replaces (or removes, `next` undefined) the intention source -> destination. */
  const write = (
    source: string,
    destination: string,
    next: (prev: Intention | undefined) => Intention | undefined,
  ): Promise<void> =>
    serial(async () => {
      const { intentions } = forDestination(destination);
      const prev = intentions.find((i) => i.source === source);
      const updated = next(prev);
      const rest = intentions.filter((i) => i.source !== source);
      const policy = intentionPolicy(
        destination,
        updated === undefined ? rest : [...rest, updated],
      );
      if (policy === undefined) await registry.deleteMeshResource(policyKey(destination));
      else await registry.applyMesh({ resources: [policy] });
    });

  /** The source, destination and record of a body (and the query's names, for `exact`). */
  const intentionOf = (
    body: NormalisedBody,
    names: { source?: string; destination?: string },
    prev: Intention | undefined,
  ): Intention => {
    const source = names.source ?? (body.SourceName as string | undefined) ?? prev?.source;
    const destination =
      names.destination ?? (body.DestinationName as string | undefined) ?? prev?.destination;
    const problem =
      intentionNameProblem('SourceName', source, true) ??
      intentionNameProblem('DestinationName', destination, false);
    if (problem !== undefined) throw refuse(problem);
    for (const ns of ['SourceNS', 'DestinationNS'] as const) {
      const v = body[ns];
      if (v !== undefined && v !== '' && v !== INTENTION_NAMESPACE)
        throw refuse(`${ns}: only the '${INTENTION_NAMESPACE}' namespace is supported`);
    }
    const type = body.SourceType;
    if (type !== undefined && type !== '' && type !== 'consul')
      throw refuse(`SourceType: must be 'consul'`);
    if (body.Permissions !== undefined && body.Permissions !== null)
      throw refuse(
        'Permissions: L7 intentions are not supported (write an AuthorizationPolicy with operations)',
      );
    const action = ((body.Action as string | undefined) ?? prev?.action ?? '').toLowerCase();
    if (action !== 'allow' && action !== 'deny') throw refuse(`Action: must be 'allow' or 'deny'`);
    const now = new Date().toISOString();
    return {
      source: source as string,
      destination: destination as string,
      action: action as IntentionAction,
      description: (body.Description as string | undefined) ?? prev?.description ?? '',
      meta: (body.Meta as Record<string, string> | undefined) ?? prev?.meta ?? {},
      createdAt: prev?.createdAt ?? now,
      updatedAt: now,
    };
  };

  const byId = (id: string) => {
    const found = all().find(({ i }) => intentionId(i.source, i.destination) === id);
    if (found === undefined) throw refuse(`Intention not found: ${id}`, 404);
    return found;
  };

  const exactNames = (req: FastifyRequest) => {
    const query = q(req);
    const source = first(query.source);
    const destination = first(query.destination);
    const problem =
      intentionNameProblem('source', source, true) ??
      intentionNameProblem('destination', destination, false);
    if (problem !== undefined) throw refuse(problem);
    return { source: source as string, destination: destination as string };
  };

  route(['GET'], '/connect/intentions', async (req, reply) => {
    const items = all().sort(
      (a, b) => byPrecedence(a.i, b.i) || cmp(a.i.destination, b.i.destination),
    );
    return json(
      req,
      reply,
      items.map(({ i, stored }) => toConsul(i, stored)),
      registry.meshIndex,
    );
  });

  route(['POST'], '/connect/intentions', async (req, reply) => {
    const intention = intentionOf(decode(req, INTENTION_SPEC), {}, undefined);
    await write(intention.source, intention.destination, (prev) => {
      if (prev !== undefined)
        throw refuse(
          `duplicate intention found: ${intention.source} => ${intention.destination}`,
          409,
        );
      return intention;
    });
    return json(req, reply, { ID: intentionId(intention.source, intention.destination) });
  });

  route(['GET'], '/connect/intentions/check', async (req, reply) => {
    const { source, destination } = exactNames(req);
    const { allowed } = intentionAllows(
      forDestination(destination).intentions,
      source,
      DEFAULT_ALLOW,
    );
    return json(req, reply, { Allowed: allowed }, registry.meshIndex);
  });

  route(['GET'], '/connect/intentions/match', async (req, reply) => {
    const query = q(req);
    const by = first(query.by);
    if (by !== 'source' && by !== 'destination')
      throw refuse(`by: must be 'source' or 'destination'`);
    const names = query.name === undefined ? [] : [query.name].flat();
    if (names.length === 0) throw refuse('name: required');
    const out: Record<string, unknown[]> = {};
    const everything = all();
    for (const name of names) {
      out[name] = everything
        .filter(({ i }) =>
          by === 'destination' ? i.destination === name : i.source === name || i.source === '*',
        )
        .sort((a, b) => byPrecedence(a.i, b.i))
        .map(({ i, stored }) => toConsul(i, stored));
    }
    return json(req, reply, out, registry.meshIndex);
  });

  route(['GET'], '/connect/intentions/exact', async (req, reply) => {
    const { source, destination } = exactNames(req);
    const { stored, intentions } = forDestination(destination);
    const i = intentions.find((x) => x.source === source);
    if (i === undefined) throw refuse(`Intention not found: ${source} => ${destination}`, 404);
    return json(req, reply, toConsul(i, stored), registry.meshIndex);
  });

  route(['PUT'], '/connect/intentions/exact', async (req, reply) => {
    const names = exactNames(req);
    const body = decode(req, INTENTION_SPEC);
    await write(names.source, names.destination, (prev) => intentionOf(body, names, prev));
    return json(req, reply, true);
  });

  route(['DELETE'], '/connect/intentions/exact', async (req, reply) => {
    const { source, destination } = exactNames(req);
    await write(source, destination, () => undefined);
    return json(req, reply, true);
  });

  route(['GET'], '/connect/intentions/:id', async (req, reply) => {
    const id = param(req, 'id');
    const found = all().find(({ i }) => intentionId(i.source, i.destination) === id);
    if (found === undefined) {
      // A read: its 404 carries the index too (clients read X-Consul-Index from every answer).
      meta(req, reply, registry.meshIndex);
      return reply
        .status(404)
        .header('content-type', 'text/plain; charset=utf-8')
        .send(`Intention not found: ${id}`);
    }
    return json(req, reply, toConsul(found.i, found.stored), registry.meshIndex);
  });

  route(['PUT'], '/connect/intentions/:id', async (req, reply) => {
    const { i: old } = byId(param(req, 'id'));
    const body = decode(req, INTENTION_SPEC, {});
    const next = intentionOf(body, {}, old);
    if (next.source !== old.source || next.destination !== old.destination) {
      // Moving an intention: it is a new pair (a new ID), and the old one goes.
      await write(next.source, next.destination, (prev) => ({
        ...next,
        createdAt: prev?.createdAt ?? next.createdAt,
      }));
      await write(old.source, old.destination, () => undefined);
    } else await write(old.source, old.destination, (prev) => intentionOf(body, {}, prev ?? old));
    return json(req, reply, true);
  });

  route(['DELETE'], '/connect/intentions/:id', async (req, reply) => {
    const { i } = byId(param(req, 'id'));
    await write(i.source, i.destination, () => undefined);
    return json(req, reply, true);
  });

  route(['POST'], '/agent/connect/authorize', async (req, reply) => {
    const body = decode(req, AUTHORIZE_SPEC);
    const target = body.Target as string | undefined;
    const problem = intentionNameProblem('Target', target, false);
    if (problem !== undefined) throw refuse(problem);
    // Consul: authorizing a call to a service takes write on it (its proxy's right).
    requireAcl(req, 'service', target as string, 'write');
    const uri = (body.ClientCertURI as string | undefined) ?? '';
    const id = parseSpiffeId(uri);
    if (id === undefined)
      throw refuse(
        `ClientCertURI: must be a SPIFFE ID spiffe://<trust-domain>/ns/<ns>/sa/<service>`,
      );
    if (id.namespace !== INTENTION_NAMESPACE)
      return json(req, reply, {
        Authorized: false,
        Reason: `namespace ${id.namespace} has no intentions (only '${INTENTION_NAMESPACE}' is supported)`,
      });
    const { allowed, by } = intentionAllows(
      forDestination(target as string).intentions,
      id.service,
      DEFAULT_ALLOW,
    );
    return json(req, reply, {
      Authorized: allowed,
      Reason:
        by === undefined
          ? 'Default behavior configured by ACLs'
          : `Matched L4 intention: ${by.source} => ${by.destination} (${by.action})`,
    });
  });
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
