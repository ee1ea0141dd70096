/**
 * @module AclSystem: the agent's tokens and policies (Consul's model) and the AclResolver the API,
 * DNS, push and CA consult. Resolved tokens are cached until the ACL document changes; in a
 * shared store (etcd) the document is re-read at most every `refreshMs`.
 */
import { randomUUID } from 'node:crypto';
import { systemClock, type Clock } from '../../core/clock.js';
import { ALLOW_ALL, type AclResolver, type Authorizer } from './acl-contract.js';
import {
  managementAuthorizer,
  rulesAuthorizer,
  unknownTokenAuthorizer,
  type AclDefaultPolicy,
} from './acl-authorizer.js';
import {
  AclRulesError,
  emptyRules,
  mergeRules,
  parseAclRules,
  strongest,
  type ParsedRules,
} from './acl-rules.js';
import type { AclDocument, AclStore, StoredAclPolicy, StoredAclToken } from './acl-store.js';

/** Consul's built-in policy that grants everything. */
export const GLOBAL_MANAGEMENT_POLICY_ID = '00000000-0000-0000-0000-000000000001';
export const GLOBAL_MANAGEMENT_POLICY_NAME = 'global-management';
/** Consul's anonymous token: what a request without a token gets. */
export const ANONYMOUS_ACCESSOR_ID = '00000000-0000-0000-0000-000000000002';
export const ANONYMOUS_SECRET_ID = 'anonymous';

/** Why an ACL operation was refused; the API maps `kind` to its status. */
export class AclOpError extends Error {
  constructor(
    readonly kind: 'invalid' | 'not-found' | 'conflict' | 'bootstrap-done' | 'forbidden',
    message: string,
  ) {
    super(message);
    this.name = 'AclOpError';
  }
}

/** A policy link as Consul's API takes it: by id or by name. */
export interface AclPolicyLink {
  readonly id?: string;
  readonly name?: string;
}

export interface AclTokenInput {
  readonly accessorId?: string;
  readonly secretId?: string;
  readonly description?: string;
  readonly policies?: readonly AclPolicyLink[];
  readonly local?: boolean;
}

export interface AclPolicyInput {
  readonly name?: string;
  readonly description?: string;
  readonly rules?: string;
  readonly datacenters?: readonly string[];
}

export interface AclSystemOptions {
  readonly store: AclStore;
  /** False: ACLs off, every request allowed (the resolver's `enabled`). */
  readonly enabled: boolean;
  readonly defaultPolicy: AclDefaultPolicy;
  /** Whether other agents write the same store (etcd): then the document is re-read. */
  readonly shared?: boolean;
  /** How stale a shared document may get before it is re-read (default 1 s). */
  readonly refreshMs?: number;
  readonly clock?: Clock;
}

const POLICY_NAME = /^[A-Za-z0-9_-]{1,128}$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const MAX_DESCRIPTION = 1024;
const MAX_TOKENS = 100_000;
const MAX_POLICIES = 10_000;
/** Writes retried when another agent changed the document meanwhile. */
const MAX_WRITE_ATTEMPTS = 8;

const BUILTIN_POLICY: StoredAclPolicy = Object.freeze({
  id: GLOBAL_MANAGEMENT_POLICY_ID,
  name: GLOBAL_MANAGEMENT_POLICY_NAME,
  description: 'Builtin Policy that grants unlimited access',
  rules: `acl = "write"
agent_prefix "" {
  policy = "write"
}
key_prefix "" {
  policy = "write"
}
node_prefix "" {
  policy = "write"
}
operator = "write"
mesh = "write"
service_prefix "" {
  policy = "write"
  intentions = "write"
}`,
  datacenters: [],
  createIndex: 1,
  modifyIndex: 1,
});

function initialDocument(): AclDocument {
  return {
    index: 1,
    bootstrapped: false,
    policies: [BUILTIN_POLICY],
    tokens: [
      {
        accessorId: ANONYMOUS_ACCESSOR_ID,
        secretId: ANONYMOUS_SECRET_ID,
        description: 'Anonymous Token',
        policies: [],
        local: false,
        createTime: new Date(0).toISOString(),
        createIndex: 1,
        modifyIndex: 1,
      },
    ],
  };
}

/** The agent's ACL system; `resolve` is its AclResolver. */
export class AclSystem implements AclResolver {
  readonly enabled: boolean;
  readonly defaultPolicy: AclDefaultPolicy;
  readonly #store: AclStore;
  readonly #shared: boolean;
  readonly #refreshMs: number;
  readonly #clock: Clock;
  #doc: AclDocument = initialDocument();
  #version = 0;
  #loadedAt = 0;
  #loading: Promise<void> | undefined;
  /** Authorizers by secret ('' for no token), valid for the current document. */
  #authorizers = new Map<string, Authorizer>();
  /** Parsed rules by policy id, valid while the policy's modifyIndex holds. */
  readonly #parsed = new Map<string, { modifyIndex: number; rules: ParsedRules }>();

  constructor(options: AclSystemOptions) {
    this.enabled = options.enabled;
    this.defaultPolicy = options.defaultPolicy;
    this.#store = options.store;
    this.#shared = options.shared ?? false;
    this.#refreshMs = options.refreshMs ?? 1_000;
    this.#clock = options.clock ?? systemClock;
  }

  /** Loads the document; call once before serving. */
  async start(): Promise<void> {
    await this.#reload();
  }

  async close(): Promise<void> {
    await this.#store.close();
  }

  // ---- resolving ----------------------------------------------------------------------------

  /**
   * The Authorizer of `secret` without waiting, or undefined when the store must be read first
   * (a shared document gone stale, or a secret this copy does not know): then `resolve`. Lets
   * the HTTP hook skip a promise per request, and DNS answer synchronously.
   */
  resolveCached(secret: string | undefined): Authorizer | undefined {
    if (!this.enabled) return ALLOW_ALL;
    if (this.#stale()) return undefined;
    const key = secret ?? '';
    const cached = this.#authorizers.get(key);
    if (cached !== undefined) return cached;
    const token = this.#tokenBySecret(key);
    if (token === undefined) return this.#shared ? undefined : unknownTokenAuthorizer();
    const auth = this.#authorizerOf(token);
    this.#authorizers.set(key, auth);
    return auth;
  }

  async resolve(secret: string | undefined): Promise<Authorizer> {
    if (!this.enabled) return ALLOW_ALL;
    if (this.#stale()) await this.#reload().catch(() => undefined);
    const now = this.resolveCached(secret);
    if (now !== undefined) return now;
    // A shared document that does not know the secret: a token just made by another agent? Read
    // the store, with a load begun after this request (one in flight is joined: a flood of
    // unknown secrets makes one read at a time, not one each).
    if (this.#shared) {
      const asked = this.#clock.monotonicMs();
      for (let i = 0; i < 2 && this.#loadedAt < asked; i++)
        await this.#reload().catch(() => undefined);
    }
    const key = secret ?? '';
    const token = this.#tokenBySecret(key);
    if (token === undefined) return unknownTokenAuthorizer();
    const auth = this.#authorizerOf(token);
    this.#authorizers.set(key, auth);
    return auth;
  }

  #stale(): boolean {
    return this.#shared && this.#clock.monotonicMs() - this.#loadedAt > this.#refreshMs;
  }

  #tokenBySecret(secret: string): StoredAclToken | undefined {
    const wanted = secret === '' ? ANONYMOUS_SECRET_ID : secret;
    return this.#doc.tokens.find((t) => t.secretId === wanted);
  }

  #authorizerOf(token: StoredAclToken): Authorizer {
    // The contract's name for "no token" (audit lines): Consul's `anonymous` secret is the same.
    const accessorId = token.accessorId === ANONYMOUS_ACCESSOR_ID ? 'anonymous' : token.accessorId;
    if (token.legacy?.type === 'management' || token.policies.includes(GLOBAL_MANAGEMENT_POLICY_ID))
      return managementAuthorizer(accessorId);
    const merged = emptyRules();
    for (const id of token.policies) {
      const policy = this.#doc.policies.find((p) => p.id === id);
      if (policy !== undefined) mergeRules(merged, this.#rulesOf(policy));
    }
    if (token.legacy !== undefined && token.legacy.rules !== '') {
      try {
        mergeRules(merged, legacyPrefixes(parseAclRules(token.legacy.rules)));
      } catch {
        // Stored rules were checked when written; a bad one grants nothing.
      }
    }
    return rulesAuthorizer(accessorId, merged, this.defaultPolicy);
  }

  #rulesOf(policy: StoredAclPolicy): ParsedRules {
    const hit = this.#parsed.get(policy.id);
    if (hit !== undefined && hit.modifyIndex === policy.modifyIndex) return hit.rules;
    let rules: ParsedRules;
    try {
      rules = parseAclRules(policy.rules);
    } catch {
      rules = emptyRules();
    }
    this.#parsed.set(policy.id, { modifyIndex: policy.modifyIndex, rules });
    return rules;
  }

  async #reload(): Promise<void> {
    this.#loading ??= (async () => {
      const begun = this.#clock.monotonicMs();
      try {
        const { doc, version } = await this.#store.load();
        this.#set(doc ?? initialDocument(), version, begun);
      } finally {
        this.#loading = undefined;
      }
    })();
    return this.#loading;
  }

  /** `loadedAt`: when the read that found `doc` began (the document is at least that fresh). */
  #set(doc: AclDocument, version: number, loadedAt = this.#clock.monotonicMs()): void {
    if (version !== this.#version) this.#authorizers = new Map();
    this.#doc = doc;
    this.#version = version;
    this.#loadedAt = loadedAt;
  }

  /** Applies `change` to the current document and saves it, retrying when another agent wrote. */
  async #write<T>(
    change: (doc: AclDocument, index: number) => { doc: AclDocument; result: T },
  ): Promise<T> {
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      if (this.#shared || attempt > 0) await this.#reload();
      const index = this.#doc.index + 1;
      const { doc, result } = change(this.#doc, index);
      const next = { ...doc, index };
      if (await this.#store.save(next, this.#version)) {
        // The version the store gave it is unknown for etcd: read it back there.
        if (this.#shared) await this.#reload();
        else this.#set(next, this.#version + 1);
        return result;
      }
    }
    throw new AclOpError('conflict', 'the ACL document kept changing: try again');
  }

  // ---- reads --------------------------------------------------------------------------------

  /** The current document (tokens with secrets: callers decide what to show). */
  async document(): Promise<AclDocument> {
    if (this.#stale()) await this.#reload();
    return this.#doc;
  }

  /** The token behind `secret` (undefined: none; no secret: the anonymous token). */
  async tokenOfSecret(secret: string | undefined): Promise<StoredAclToken | undefined> {
    const doc = await this.document();
    if (secret === undefined || secret === '')
      return doc.tokens.find((t) => t.accessorId === ANONYMOUS_ACCESSOR_ID);
    return this.#tokenBySecret(secret);
  }

  // ---- writes -------------------------------------------------------------------------------

  /** Makes the first management token; refused once done (Consul: "ACL bootstrap no longer allowed"). */
  async bootstrap(): Promise<StoredAclToken> {
    return this.#write((doc, index) => {
      if (doc.bootstrapped)
        throw new AclOpError('bootstrap-done', 'ACL bootstrap no longer allowed');
      const token = this.#newToken(doc, index, {
        description: 'Bootstrap Token (Global Management)',
        policies: [{ id: GLOBAL_MANAGEMENT_POLICY_ID }],
      });
      return { doc: { ...doc, bootstrapped: true, tokens: [...doc.tokens, token] }, result: token };
    });
  }

  async createToken(
    input: AclTokenInput,
    legacy?: StoredAclToken['legacy'],
  ): Promise<StoredAclToken> {
    return this.#write((doc, index) => {
      if (doc.tokens.length >= MAX_TOKENS)
        throw new AclOpError('invalid', `at most ${MAX_TOKENS} tokens`);
      const token = this.#newToken(doc, index, input, legacy);
      return { doc: { ...doc, tokens: [...doc.tokens, token] }, result: token };
    });
  }

  async updateToken(
    accessorId: string,
    input: AclTokenInput,
    legacy?: StoredAclToken['legacy'],
  ): Promise<StoredAclToken> {
    return this.#write((doc, index) => {
      const old = doc.tokens.find((t) => t.accessorId === accessorId);
      if (old === undefined) throw new AclOpError('not-found', 'Cannot find token to update');
      if (input.secretId !== undefined && input.secretId !== '' && input.secretId !== old.secretId)
        throw new AclOpError('invalid', 'Changing a tokens SecretID is not permitted');
      const token: StoredAclToken = {
        ...old,
        description: checkDescription(input.description ?? old.description),
        policies: input.policies === undefined ? old.policies : policyIds(doc, input.policies),
        ...(legacy === undefined ? {} : { legacy }),
        modifyIndex: index,
      };
      return {
        doc: { ...doc, tokens: doc.tokens.map((t) => (t.accessorId === accessorId ? token : t)) },
        result: token,
      };
    });
  }

  async deleteToken(accessorId: string): Promise<boolean> {
    if (accessorId === ANONYMOUS_ACCESSOR_ID)
      throw new AclOpError('forbidden', 'Delete operation not permitted on the anonymous token');
    return this.#write((doc) => {
      const found = doc.tokens.some((t) => t.accessorId === accessorId);
      return {
        doc: { ...doc, tokens: doc.tokens.filter((t) => t.accessorId !== accessorId) },
        result: found,
      };
    });
  }

  async createPolicy(input: AclPolicyInput): Promise<StoredAclPolicy> {
    return this.#write((doc, index) => {
      if (doc.policies.length >= MAX_POLICIES)
        throw new AclOpError('invalid', `at most ${MAX_POLICIES} policies`);
      const fields = checkPolicy(doc, input, undefined);
      const policy: StoredAclPolicy = {
        id: randomUUID(),
        ...fields,
        createIndex: index,
        modifyIndex: index,
      };
      return { doc: { ...doc, policies: [...doc.policies, policy] }, result: policy };
    });
  }

  async updatePolicy(id: string, input: AclPolicyInput): Promise<StoredAclPolicy> {
    return this.#write((doc, index) => {
      const old = doc.policies.find((p) => p.id === id);
      if (old === undefined) throw new AclOpError('not-found', 'Cannot find policy to update');
      if (
        id === GLOBAL_MANAGEMENT_POLICY_ID &&
        input.rules !== undefined &&
        input.rules !== old.rules
      )
        throw new AclOpError(
          'invalid',
          'Changing the Rules for the builtin global-management policy is not permitted',
        );
      const fields = checkPolicy(doc, { ...old, ...input }, id);
      const policy: StoredAclPolicy = { ...old, ...fields, modifyIndex: index };
      return {
        doc: { ...doc, policies: doc.policies.map((p) => (p.id === id ? policy : p)) },
        result: policy,
      };
    });
  }

  async deletePolicy(id: string): Promise<boolean> {
    if (id === GLOBAL_MANAGEMENT_POLICY_ID)
      throw new AclOpError(
        'forbidden',
        'Delete operation not permitted on the builtin global-management policy',
      );
    return this.#write((doc) => {
      const found = doc.policies.some((p) => p.id === id);
      return {
        doc: {
          ...doc,
          policies: doc.policies.filter((p) => p.id !== id),
          // Tokens linking it lose the link (Consul drops dangling links too).
          tokens: doc.tokens.map((t) =>
            t.policies.includes(id) ? { ...t, policies: t.policies.filter((p) => p !== id) } : t,
          ),
        },
        result: found,
      };
    });
  }

  #newToken(
    doc: AclDocument,
    index: number,
    input: AclTokenInput,
    legacy?: StoredAclToken['legacy'],
  ): StoredAclToken {
    const accessorId = checkUuid(input.accessorId, 'AccessorID') ?? randomUUID();
    const secretId = checkUuid(input.secretId, 'SecretID') ?? randomUUID();
    if (doc.tokens.some((t) => t.accessorId === accessorId))
      throw new AclOpError('invalid', 'Invalid Token: AccessorID is already in use');
    if (doc.tokens.some((t) => t.secretId === secretId))
      throw new AclOpError('invalid', 'Invalid Token: SecretID is already in use');
    return {
      accessorId,
      secretId,
      description: checkDescription(input.description ?? ''),
      policies: policyIds(doc, input.policies ?? []),
      local: input.local ?? false,
      createTime: new Date(this.#clock.now()).toISOString(),
      createIndex: index,
      modifyIndex: index,
      ...(legacy === undefined ? {} : { legacy }),
    };
  }
}

function checkUuid(value: string | undefined, field: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (!UUID.test(value)) throw new AclOpError('invalid', `Invalid ${field}: must be a UUID`);
  return value.toLowerCase();
}

function checkDescription(value: string): string {
  if (value.length > MAX_DESCRIPTION)
    throw new AclOpError('invalid', `Description must be at most ${MAX_DESCRIPTION} characters`);
  return value;
}

/** The ids of `links`, each resolved by id or name; an unknown one is refused. */
function policyIds(doc: AclDocument, links: readonly AclPolicyLink[]): string[] {
  const ids = links.map((l) => {
    const p =
      l.id !== undefined && l.id !== ''
        ? doc.policies.find((x) => x.id === l.id)
        : doc.policies.find((x) => x.name === l.name);
    if (p === undefined)
      throw new AclOpError(
        'invalid',
        `No such ACL policy with ${l.id !== undefined && l.id !== '' ? `ID "${l.id}"` : `name "${l.name ?? ''}"`}`,
      );
    return p.id;
  });
  return [...new Set(ids)];
}

/** A policy's fields checked: a free, valid name and rules that parse. */
function checkPolicy(
  doc: AclDocument,
  input: AclPolicyInput,
  id: string | undefined,
): Omit<StoredAclPolicy, 'id' | 'createIndex' | 'modifyIndex'> {
  const name = input.name ?? '';
  if (!POLICY_NAME.test(name))
    throw new AclOpError(
      'invalid',
      `Invalid Policy: invalid Name "${name}": letters, digits, - and _, at most 128`,
    );
  if (doc.policies.some((p) => p.name === name && p.id !== id))
    throw new AclOpError('invalid', `Invalid Policy: A Policy with Name "${name}" already exists`);
  const rules = input.rules ?? '';
  try {
    parseAclRules(rules);
  } catch (err) {
    if (err instanceof AclRulesError)
      throw new AclOpError('invalid', `Failed to parse policy rules: ${err.reason}`);
    throw err;
  }
  return {
    name,
    description: checkDescription(input.description ?? ''),
    rules,
    datacenters: [...(input.datacenters ?? [])],
  };
}

/**
 * Legacy tokens' rules as Consul (1.4 to 1.10) read them: before 1.4, `key "app/"` and
 * `service "web"` were prefix rules, so a legacy token's exact rules match as prefixes.
 */
function legacyPrefixes(rules: ParsedRules): ParsedRules {
  const out = emptyRules();
  for (const kind of ['service', 'kv', 'node', 'agent', 'session', 'event', 'query'] as const) {
    const { exact, prefix } = rules.segmented[kind];
    const target = out.segmented[kind].prefix;
    for (const [name, d] of [...prefix, ...exact]) target.set(name, strongest(target.get(name), d));
  }
  return { segmented: out.segmented, scalar: { ...rules.scalar } };
}
