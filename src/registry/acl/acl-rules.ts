/**
 * @module The rule language of ACL policies: the subset of Consul's (HCL, or its JSON form) that
 * Meshwork enforces, parsed into a {@link ParsedRules}. Parse errors name the line and the reason.
 */

/** A rule's disposition, as Consul names them (`list` is read for `key_prefix`). */
export type AclDisposition = 'read' | 'write' | 'deny';

/** The segmented resources (`service "web" { policy = "read" }` and `service_prefix`). */
export type AclSegmentedKind = 'service' | 'kv' | 'node' | 'agent' | 'session' | 'event' | 'query';

/** The resources without a segment (`mesh = "write"`). */
export type AclScalarKind = 'mesh' | 'acl' | 'operator';

/** The exact and prefix rules of one segmented resource. */
export interface AclSegmentRules {
  readonly exact: Map<string, AclDisposition>;
  readonly prefix: Map<string, AclDisposition>;
}

/** What one policy (or several merged) grants. */
export interface ParsedRules {
  readonly segmented: Record<AclSegmentedKind, AclSegmentRules>;
  readonly scalar: Partial<Record<AclScalarKind, AclDisposition>>;
}

/** A rules text that does not parse; `reason` names the line. */
export class AclRulesError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'AclRulesError';
  }
}

/** Rules texts past this are refused (Consul has no documented cap; 64 KiB is generous). */
export const MAX_RULES_BYTES = 64 * 1024;

const SEGMENTED: Record<string, { kind: AclSegmentedKind; prefix: boolean }> = {
  service: { kind: 'service', prefix: false },
  service_prefix: { kind: 'service', prefix: true },
  key: { kind: 'kv', prefix: false },
  key_prefix: { kind: 'kv', prefix: true },
  node: { kind: 'node', prefix: false },
  node_prefix: { kind: 'node', prefix: true },
  agent: { kind: 'agent', prefix: false },
  agent_prefix: { kind: 'agent', prefix: true },
  session: { kind: 'session', prefix: false },
  session_prefix: { kind: 'session', prefix: true },
  event: { kind: 'event', prefix: false },
  event_prefix: { kind: 'event', prefix: true },
  query: { kind: 'query', prefix: false },
  query_prefix: { kind: 'query', prefix: true },
};

/** Consul resources Meshwork has nothing for: accepted (so Consul policies load) and ignored. */
const IGNORED_SEGMENTED = new Set(['identity', 'identity_prefix']);
const SCALAR = new Set<string>(['mesh', 'acl', 'operator']);
const IGNORED_SCALAR = new Set(['keyring', 'peering']);
/** Attributes of a segment block besides `policy`: accepted and ignored. */
const IGNORED_ATTRIBUTES = new Set(['intentions']);

/** Empty rules: grant nothing. */
export function emptyRules(): ParsedRules {
  const seg = (): AclSegmentRules => ({ exact: new Map(), prefix: new Map() });
  return {
    segmented: {
      service: seg(),
      kv: seg(),
      node: seg(),
      agent: seg(),
      session: seg(),
      event: seg(),
      query: seg(),
    },
    scalar: {},
  };
}

const RANK: Record<AclDisposition, number> = { read: 1, write: 2, deny: 3 };

/** Two dispositions for the same rule merged: deny beats write beats read. */
export function strongest(a: AclDisposition | undefined, b: AclDisposition): AclDisposition {
  return a === undefined || RANK[b] > RANK[a] ? b : a;
}

/** Merges `from` into `into` (several policies of one token, or repeated rules). */
export function mergeRules(into: ParsedRules, from: ParsedRules): ParsedRules {
  for (const kind of Object.keys(from.segmented) as AclSegmentedKind[]) {
    for (const which of ['exact', 'prefix'] as const) {
      const target = into.segmented[kind][which];
      for (const [name, d] of from.segmented[kind][which])
        target.set(name, strongest(target.get(name), d));
    }
  }
  for (const [kind, d] of Object.entries(from.scalar) as [AclScalarKind, AclDisposition][]) {
    into.scalar[kind] = strongest(into.scalar[kind], d);
  }
  return into;
}

function disposition(value: unknown, where: string, allowList: boolean): AclDisposition {
  if (value === 'read' || value === 'write' || value === 'deny') return value;
  if (value === 'list' && allowList) return 'read';
  throw new AclRulesError(
    `${where}: policy must be "read", "write" or "deny"${allowList ? ' (or "list")' : ''}, not ${JSON.stringify(value)}`,
  );
}

/**
 * Parses a policy's rules: Consul's HCL (`service_prefix "web" { policy = "write" }`,
 * `mesh = "read"`, comments `#`, `//`, `/* *\/`) or its JSON form
 * (`{"service_prefix": {"web": {"policy": "write"}}}`). Never throws anything but
 * {@link AclRulesError}.
 * @example
 * parseAclRules('service "web" { policy = "write" }').segmented.service.exact.get('web'); // 'write'
 */
export function parseAclRules(text: string): ParsedRules {
  if (Buffer.byteLength(text) > MAX_RULES_BYTES)
    throw new AclRulesError(`rules must be at most ${MAX_RULES_BYTES} bytes`);
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(trimmed);
    } catch (err) {
      throw new AclRulesError(`rules: not valid JSON: ${(err as Error).message}`);
    }
    return rulesFromJson(doc);
  }
  return rulesFromHcl(text);
}

// ---- HCL ----------------------------------------------------------------------------------

type Tok =
  | { t: 'ident'; v: string; line: number }
  | { t: 'string'; v: string; line: number }
  | { t: '{' | '}' | '=' | ','; line: number };

function tokenize(text: string): Tok[] {
  const out: Tok[] = [];
  let line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i] as string;
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r' || c === ';') {
      i++;
    } else if (c === '#' || (c === '/' && text[i + 1] === '/')) {
      while (i < n && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) throw new AclRulesError(`line ${line}: comment "/*" is never closed`);
      for (let k = i; k < end; k++) if (text[k] === '\n') line++;
      i = end + 2;
    } else if (c === '{' || c === '}' || c === '=' || c === ',') {
      out.push({ t: c, line });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      let v = '';
      for (;;) {
        if (j >= n || text[j] === '\n')
          throw new AclRulesError(`line ${line}: string is not closed`);
        const d = text[j] as string;
        if (d === '"') break;
        if (d === '\\') {
          const e = text[j + 1];
          const simple: Record<string, string> = {
            '"': '"',
            '\\': '\\',
            n: '\n',
            t: '\t',
            r: '\r',
            '/': '/',
          };
          if (e !== undefined && simple[e] !== undefined) {
            v += simple[e];
            j += 2;
          } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(j + 2, j + 6))) {
            v += String.fromCharCode(parseInt(text.slice(j + 2, j + 6), 16));
            j += 6;
          } else {
            throw new AclRulesError(`line ${line}: unknown escape in string`);
          }
        } else {
          v += d;
          j++;
        }
      }
      out.push({ t: 'string', v, line });
      i = j + 1;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_-]/.test(text[j] as string)) j++;
      out.push({ t: 'ident', v: text.slice(i, j), line });
      i = j;
    } else {
      throw new AclRulesError(`line ${line}: unexpected character ${JSON.stringify(c)}`);
    }
  }
  return out;
}

function rulesFromHcl(text: string): ParsedRules {
  const toks = tokenize(text);
  const rules = emptyRules();
  let i = 0;
  const next = (): Tok | undefined => toks[i++];
  const expect = <T extends Tok['t']>(t: T, what: string, line: number): Extract<Tok, { t: T }> => {
    const tok = next();
    if (tok?.t !== t) throw new AclRulesError(`line ${tok?.line ?? line}: expected ${what}`);
    return tok as Extract<Tok, { t: T }>;
  };
  while (i < toks.length) {
    const head = next() as Tok;
    if (head.t !== 'ident') throw new AclRulesError(`line ${head.line}: expected a resource name`);
    const name = head.v;
    const after = next();
    if (after?.t === '=') {
      // `mesh = "write"`
      const value = expect('string', `a quoted policy after "${name} ="`, head.line);
      scalarRule(rules, name, value.v, `line ${head.line}`);
      continue;
    }
    if (after?.t !== 'string')
      throw new AclRulesError(
        `line ${after?.line ?? head.line}: expected "=" or a quoted name after "${name}"`,
      );
    const segment = after.v;
    expect('{', `"{" after ${name} "${segment}"`, after.line);
    let policy: AclDisposition | undefined;
    for (;;) {
      const tok = next();
      if (tok === undefined) throw new AclRulesError(`line ${head.line}: block is never closed`);
      if (tok.t === '}') break;
      if (tok.t === ',') continue;
      if (tok.t !== 'ident' && tok.t !== 'string')
        throw new AclRulesError(`line ${tok.line}: expected an attribute`);
      expect('=', `"=" after ${tok.v}`, tok.line);
      const value = expect('string', `a quoted value for ${tok.v}`, tok.line);
      if (tok.v === 'policy') {
        policy = disposition(value.v, `line ${tok.line}`, name === 'key_prefix');
      } else if (!IGNORED_ATTRIBUTES.has(tok.v)) {
        throw new AclRulesError(`line ${tok.line}: unknown attribute "${tok.v}" (expected policy)`);
      }
    }
    if (policy === undefined)
      throw new AclRulesError(`line ${head.line}: ${name} "${segment}" has no policy`);
    segmentRule(rules, name, segment, policy, `line ${head.line}`);
  }
  return rules;
}

function scalarRule(rules: ParsedRules, name: string, value: unknown, where: string): void {
  if (SCALAR.has(name)) {
    const kind = name as AclScalarKind;
    rules.scalar[kind] = strongest(rules.scalar[kind], disposition(value, where, false));
  } else if (IGNORED_SCALAR.has(name)) {
    disposition(value, where, false);
  } else {
    throw new AclRulesError(`${where}: unknown resource "${name}"`);
  }
}

function segmentRule(
  rules: ParsedRules,
  name: string,
  segment: string,
  policy: AclDisposition,
  where: string,
): void {
  const spec = SEGMENTED[name];
  if (spec === undefined) {
    if (IGNORED_SEGMENTED.has(name)) return;
    throw new AclRulesError(`${where}: unknown resource "${name}"`);
  }
  const target = rules.segmented[spec.kind][spec.prefix ? 'prefix' : 'exact'];
  target.set(segment, strongest(target.get(segment), policy));
}

// ---- JSON ---------------------------------------------------------------------------------

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** HCL's JSON form may wrap any object in an array of objects. */
function objects(v: unknown, where: string): Record<string, unknown>[] {
  if (isObject(v)) return [v];
  if (Array.isArray(v) && v.every(isObject)) return v;
  throw new AclRulesError(`${where}: must be an object`);
}

function rulesFromJson(doc: unknown): ParsedRules {
  const rules = emptyRules();
  for (const top of objects(doc, 'rules')) {
    for (const [name, value] of Object.entries(top)) {
      if (SCALAR.has(name) || IGNORED_SCALAR.has(name)) {
        scalarRule(rules, name, value, `rules.${name}`);
        continue;
      }
      if (SEGMENTED[name] === undefined && !IGNORED_SEGMENTED.has(name))
        throw new AclRulesError(`rules: unknown resource "${name}"`);
      for (const segments of objects(value, `rules.${name}`)) {
        for (const [segment, body] of Object.entries(segments)) {
          const where = `rules.${name}.${JSON.stringify(segment)}`;
          let policy: AclDisposition | undefined;
          for (const attrs of objects(body, where)) {
            for (const [attr, v] of Object.entries(attrs)) {
              if (attr === 'policy') policy = disposition(v, where, name === 'key_prefix');
              else if (!IGNORED_ATTRIBUTES.has(attr))
                throw new AclRulesError(`${where}: unknown attribute "${attr}" (expected policy)`);
            }
          }
          if (policy === undefined) throw new AclRulesError(`${where}: has no policy`);
          segmentRule(rules, name, segment, policy, where);
        }
      }
    }
  }
  return rules;
}
