/**
 * @module The Consul /v1/acl endpoints: bootstrap, tokens and policies in Consul's JSON shapes,
 * and the legacy token endpoints (`/v1/acl/create`, `info`, `list`...) that python-consul 0.7
 * and the npm `consul` package call, mapped onto the same tokens.
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import {
  AclOpError,
  ANONYMOUS_ACCESSOR_ID,
  GLOBAL_MANAGEMENT_POLICY_ID,
  type AclPolicyInput,
  type AclSystem,
  type AclTokenInput,
} from '../../registry/acl/acl-system.js';
import type { AclDocument, StoredAclPolicy, StoredAclToken } from '../../registry/acl/acl-store.js';
import { requestToken } from '../../registry/acl/acl-contract.js';
import { rawBody } from '../body.js';
import { mayRead, requireAcl, requestAcl } from '../acl/request-acl.js';
import type { ConsulContext } from './consul-context.js';
import { refuse } from './consul-refuse.js';

type Body = Record<string, unknown>;

/** The body as a JSON object, its keys looked up case-insensitively (as Consul decodes). */
function objectBody(req: FastifyRequest): (name: string) => unknown {
  const raw = rawBody(req);
  let parsed: unknown = {};
  if (raw.length > 0) {
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw refuse(`Request decode failed: ${(err as Error).message}`);
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw refuse('Request decode failed: the body must be a JSON object');
  const byLower = new Map(Object.entries(parsed as Body).map(([k, v]) => [k.toLowerCase(), v]));
  return (name) => byLower.get(name.toLowerCase());
}

function str(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw refuse(`Request decode failed: ${field} must be a string`);
  return v;
}

function links(v: unknown): AclTokenInput['policies'] {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw refuse('Request decode failed: Policies must be an array');
  return v.map((l, i) => {
    if (typeof l !== 'object' || l === null)
      throw refuse(`Request decode failed: Policies[${i}] must be an object with ID or Name`);
    const o = l as Body;
    const id = str(o.ID ?? o.Id ?? o.id, `Policies[${i}].ID`);
    const name = str(o.Name ?? o.name, `Policies[${i}].Name`);
    if ((id ?? '') === '' && (name ?? '') === '')
      throw refuse(`Request decode failed: Policies[${i}] needs an ID or a Name`);
    return { ...(id === undefined ? {} : { id }), ...(name === undefined ? {} : { name }) };
  });
}

function tokenInput(get: (n: string) => unknown): AclTokenInput {
  const accessorId = str(get('AccessorID'), 'AccessorID');
  const secretId = str(get('SecretID'), 'SecretID');
  const description = str(get('Description'), 'Description');
  const policies = links(get('Policies'));
  const local = get('Local');
  if (local !== undefined && typeof local !== 'boolean')
    throw refuse('Request decode failed: Local must be a boolean');
  return {
    ...(accessorId === undefined ? {} : { accessorId }),
    ...(secretId === undefined ? {} : { secretId }),
    ...(description === undefined ? {} : { description }),
    ...(policies === undefined ? {} : { policies }),
    ...(local === undefined ? {} : { local }),
  };
}

function policyInput(get: (n: string) => unknown): AclPolicyInput {
  const name = str(get('Name'), 'Name');
  const description = str(get('Description'), 'Description');
  const rules = str(get('Rules'), 'Rules');
  const dcs = get('Datacenters');
  if (
    dcs !== undefined &&
    dcs !== null &&
    !(Array.isArray(dcs) && dcs.every((d) => typeof d === 'string'))
  )
    throw refuse('Request decode failed: Datacenters must be an array of strings');
  return {
    ...(name === undefined ? {} : { name }),
    ...(description === undefined ? {} : { description }),
    ...(rules === undefined ? {} : { rules }),
    ...(Array.isArray(dcs) ? { datacenters: dcs as string[] } : {}),
  };
}

const hash = (...parts: unknown[]): string =>
  createHash('sha256').update(JSON.stringify(parts)).digest('base64');

function policyLinks(doc: AclDocument, t: StoredAclToken): { ID: string; Name: string }[] {
  return t.policies.flatMap((id) => {
    const p = doc.policies.find((x) => x.id === id);
    return p === undefined ? [] : [{ ID: p.id, Name: p.name }];
  });
}

/** A token in Consul's shape; `secret` false redacts the SecretID. */
function tokenJson(doc: AclDocument, t: StoredAclToken, secret: boolean): Body {
  return {
    AccessorID: t.accessorId,
    SecretID: secret ? t.secretId : '<hidden>',
    Description: t.description,
    Policies: policyLinks(doc, t),
    Local: t.local,
    CreateTime: t.createTime,
    Hash: hash(t.description, t.policies, t.local, t.legacy),
    CreateIndex: t.createIndex,
    ModifyIndex: t.modifyIndex,
    ...(t.legacy === undefined ? {} : { Legacy: true, Rules: t.legacy.rules }),
  };
}

function policyJson(p: StoredAclPolicy, withRules: boolean): Body {
  return {
    ID: p.id,
    Name: p.name,
    Description: p.description,
    ...(withRules ? { Rules: p.rules } : {}),
    Datacenters: p.datacenters.length === 0 ? null : p.datacenters,
    Hash: hash(p.name, p.description, p.rules, p.datacenters),
    CreateIndex: p.createIndex,
    ModifyIndex: p.modifyIndex,
  };
}

/** A token as the legacy API showed it: its ID is its secret. */
function legacyJson(t: StoredAclToken): Body {
  const management =
    t.legacy?.type === 'management' || t.policies.includes(GLOBAL_MANAGEMENT_POLICY_ID);
  return {
    ID: t.secretId,
    Name: t.description,
    Type: management ? 'management' : 'client',
    Rules: t.legacy?.rules ?? '',
    CreateIndex: t.createIndex,
    ModifyIndex: t.modifyIndex,
  };
}

/** An ACL operation's refusal as Consul answers it. */
function mapped<T>(op: Promise<T>): Promise<T> {
  return op.catch((err: unknown) => {
    if (!(err instanceof AclOpError)) throw err;
    switch (err.kind) {
      case 'bootstrap-done':
      case 'forbidden':
        throw refuse(`Permission denied: ${err.message}`, 403);
      case 'not-found':
        throw refuse(err.message, 404);
      case 'conflict':
        throw refuse(err.message, 409);
      default:
        throw refuse(err.message, 400);
    }
  });
}

/** Adds the /v1/acl routes; without `acl` (ACLs off) they answer 401 "ACL support disabled". */
export function registerConsulAclRoutes(ctx: ConsulContext, acl: AclSystem | undefined): void {
  const { route, json, param } = ctx;
  const system = (): AclSystem => {
    if (acl === undefined || !acl.enabled) throw refuse('ACL support disabled', 401);
    return acl;
  };
  const canSeeSecrets = (req: FastifyRequest): boolean =>
    requestAcl(req).auth.check('acl', '', 'write').allowed;

  route(['PUT'], '/acl/bootstrap', async (req, reply) => {
    const s = system();
    const token = await mapped(s.bootstrap());
    return json(req, reply, tokenJson(await s.document(), token, true));
  });

  // ---- tokens -------------------------------------------------------------------------------
  route(['PUT'], '/acl/token', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'write');
    const token = await mapped(s.createToken(tokenInput(objectBody(req))));
    return json(req, reply, tokenJson(await s.document(), token, true));
  });

  route(['GET'], '/acl/token/self', async (req, reply) => {
    const s = system();
    const secret = requestToken(req.headers);
    const token = secret === undefined ? undefined : await s.tokenOfSecret(secret);
    if (token === undefined) throw refuse('ACL not found', 403);
    return json(req, reply, tokenJson(await s.document(), token, true));
  });

  const tokenById = async (s: AclSystem, id: string): Promise<StoredAclToken> => {
    const token = (await s.document()).tokens.find((t) => t.accessorId === id);
    if (token === undefined) throw refuse('ACL not found', 403);
    return token;
  };

  route(['GET'], '/acl/token/:id', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'read');
    const token = await tokenById(s, param(req, 'id'));
    return json(req, reply, tokenJson(await s.document(), token, canSeeSecrets(req)));
  });

  route(['PUT'], '/acl/token/:id', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'write');
    const id = param(req, 'id');
    const input = tokenInput(objectBody(req));
    if (input.accessorId !== undefined && input.accessorId !== '' && input.accessorId !== id)
      throw refuse('AccessorID in the body does not match the URL');
    const token = await mapped(s.updateToken(id, input));
    return json(req, reply, tokenJson(await s.document(), token, true));
  });

  route(['DELETE'], '/acl/token/:id', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'write');
    await mapped(s.deleteToken(param(req, 'id')));
    return json(req, reply, true);
  });

  route(['GET'], '/acl/tokens', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'read');
    const doc = await s.document();
    const secrets = canSeeSecrets(req);
    return json(
      req,
      reply,
      doc.tokens.map((t) => tokenJson(doc, t, secrets)),
      doc.index,
    );
  });

  // ---- policies -----------------------------------------------------------------------------
  route(['PUT'], '/acl/policy', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'write');
    const policy = await mapped(s.createPolicy(policyInput(objectBody(req))));
    return json(req, reply, policyJson(policy, true));
  });

  const policyBy = async (s: AclSystem, pick: (p: StoredAclPolicy) => boolean) => {
    const policy = (await s.document()).policies.find(pick);
    if (policy === undefined) throw refuse('ACL not found', 403);
    return policy;
  };

  route(['GET'], '/acl/policy/:id', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'read');
    const id = param(req, 'id');
    return json(req, reply, policyJson(await policyBy(s, (p) => p.id === id), true));
  });

  route(['GET'], '/acl/policy/name/:name', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'read');
    const name = param(req, 'name');
    return json(req, reply, policyJson(await policyBy(s, (p) => p.name === name), true));
  });

  route(['PUT'], '/acl/policy/:id', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'write');
    const policy = await mapped(s.updatePolicy(param(req, 'id'), policyInput(objectBody(req))));
    return json(req, reply, policyJson(policy, true));
  });

  route(['DELETE'], '/acl/policy/:id', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'write');
    await mapped(s.deletePolicy(param(req, 'id')));
    return json(req, reply, true);
  });

  route(['GET'], '/acl/policies', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'read');
    const doc = await s.document();
    return json(
      req,
      reply,
      doc.policies.map((p) => policyJson(p, false)),
      doc.index,
    );
  });

  // ---- legacy (Consul < 1.4; python-consul 0.7 and npm consul 2 call these) ----------------
  const legacyInput = (get: (n: string) => unknown) => {
    const type = str(get('Type'), 'Type') ?? 'client';
    if (type !== 'client' && type !== 'management')
      throw refuse(`Invalid ACL Type "${type}": client or management`);
    const rules = str(get('Rules'), 'Rules') ?? '';
    return { name: str(get('Name'), 'Name') ?? '', type, rules } as const;
  };
  const bySecret = async (s: AclSystem, id: string): Promise<StoredAclToken | undefined> =>
    id === '' ? undefined : (await s.document()).tokens.find((t) => t.secretId === id);

  route(['PUT'], '/acl/create', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'write');
    const get = objectBody(req);
    const { name, type, rules } = legacyInput(get);
    const id = str(get('ID'), 'ID');
    const token = await mapped(
      s.createToken(
        { description: name, ...(id === undefined ? {} : { secretId: id }) },
        { type, rules },
      ),
    );
    return json(req, reply, { ID: token.secretId });
  });

  route(['PUT'], '/acl/update', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'write');
    const get = objectBody(req);
    const { name, type, rules } = legacyInput(get);
    const token = await bySecret(s, str(get('ID'), 'ID') ?? '');
    if (token === undefined) throw refuse('ACL not found', 403);
    await mapped(s.updateToken(token.accessorId, { description: name }, { type, rules }));
    return json(req, reply, { ID: token.secretId });
  });

  route(['PUT'], '/acl/destroy/:id', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'write');
    const token = await bySecret(s, param(req, 'id'));
    if (token !== undefined) await mapped(s.deleteToken(token.accessorId));
    return json(req, reply, true);
  });

  route(['PUT'], '/acl/clone/:id', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'write');
    const token = await bySecret(s, param(req, 'id'));
    if (token === undefined || token.accessorId === ANONYMOUS_ACCESSOR_ID)
      throw refuse('ACL not found', 403);
    const copy = await mapped(
      s.createToken(
        { description: token.description, policies: token.policies.map((id) => ({ id })) },
        token.legacy,
      ),
    );
    return json(req, reply, { ID: copy.secretId });
  });

  route(['GET'], '/acl/info/:id', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'read');
    const token = await bySecret(s, param(req, 'id'));
    return json(req, reply, token === undefined ? [] : [legacyJson(token)]);
  });

  route(['GET'], '/acl/list', async (req, reply) => {
    const s = system();
    requireAcl(req, 'acl', '', 'read');
    const doc = await s.document();
    return json(req, reply, doc.tokens.map(legacyJson), doc.index);
  });

  // The agent's own tokens (Consul's agent/token/:type) are not used by Meshwork.
  route(['PUT'], '/agent/token/:type', async (req) => {
    if (acl === undefined || !acl.enabled) throw refuse('ACL support disabled', 401);
    if (!mayRead(req, 'acl', '')) throw refuse('Permission denied', 403);
    throw refuse('Meshwork agents use no agent tokens: nothing to set', 400);
  });
}
