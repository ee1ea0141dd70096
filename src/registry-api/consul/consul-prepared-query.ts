/**
 * @module Consul prepared query definitions: read from a /v1/query body and checked as Consul's
 * parseQuery checks them (its messages), resolved by ID, name or name-prefix template, and
 * rendered (`${name.full}`, `${name.prefix}`, `${name.suffix}`, `${match(N)}`).
 */
import { parseDurationMs } from '../../core/duration.js';
import { ERROR_CODES, isMeshError } from '../../core/errors.js';
import { normaliseBody, parseJsonBody, type BodySpec, type NormalisedBody } from './consul-body.js';
import { refuse } from './consul-refuse.js';

/** Consul's redacted token: shown instead of a query's Token, refused when sent back. */
export const REDACTED_TOKEN = '<hidden>';

/** A prepared query as stored and shown (Consul's field names), without its indexes. */
export interface PreparedQueryDef {
  readonly ID: string;
  readonly Name: string;
  readonly Session: string;
  readonly Token: string;
  readonly Template: {
    readonly Type: string;
    readonly Regexp: string;
    readonly RemoveEmptyTags: boolean;
  };
  readonly Service: {
    readonly Service: string;
    readonly Failover: {
      readonly NearestN: number;
      readonly Datacenters: readonly string[];
    };
    readonly OnlyPassing: boolean;
    readonly IgnoreCheckIDs: readonly string[];
    readonly Near: string;
    readonly Tags: readonly string[];
    readonly NodeMeta: Readonly<Record<string, string>>;
    readonly ServiceMeta: Readonly<Record<string, string>>;
  };
  readonly DNS: { readonly TTL: string };
}

const QUERY_SPEC: BodySpec = {
  fields: {
    ID: 'string',
    Name: 'string',
    Session: 'string',
    Token: 'string',
    // The npm consul package sends Near here rather than under Service: taken as Service.Near.
    Near: 'string',
    Template: {
      object: { fields: { Type: 'string', Regexp: 'string', RemoveEmptyTags: 'bool' } },
    },
    Service: {
      object: {
        fields: {
          Service: 'string',
          Failover: {
            object: { fields: { NearestN: 'int', Datacenters: 'strings', Targets: 'any' } },
          },
          OnlyPassing: 'bool',
          IgnoreCheckIDs: 'strings',
          Near: 'string',
          Tags: 'strings',
          NodeMeta: 'stringMap',
          ServiceMeta: 'stringMap',
          Peer: 'string',
          SamenessGroup: 'string',
          Connect: { object: { fields: { Enabled: 'bool' } } },
        },
      },
    },
    DNS: { object: { fields: { TTL: 'string' } } },
  },
};

/** Consul's answer to a definition it refuses (Invalid prepared query: <why>), as a 400. */
const invalid = (why: string) => refuse(`Invalid prepared query: ${why}`);

/**
 * Reads and checks a definition (a create's or update's body). `id` is the query's ID (a
 * create's new one). Throws a 400 refusal naming the problem.
 * @example
 * parsePreparedQuery(Buffer.from('{"Name":"web","Service":{"Service":"web"}}'), 'id-1').Service.Service // 'web'
 */
export function parsePreparedQuery(body: Buffer, id: string): PreparedQueryDef {
  let q: NormalisedBody;
  try {
    q = normaliseBody(parseJsonBody(body), QUERY_SPEC);
  } catch (err) {
    if (isMeshError(err, ERROR_CODES.VALIDATION))
      throw refuse(`Request decode failed: ${err.message}`);
    throw err;
  }
  const s = (q.Service as NormalisedBody | undefined) ?? {};
  const f = (s.Failover as NormalisedBody | undefined) ?? {};
  const t = (q.Template as NormalisedBody | undefined) ?? {};
  const str = (o: NormalisedBody, k: string): string => (o[k] as string | undefined) ?? '';
  const def: PreparedQueryDef = {
    ID: id,
    Name: str(q, 'Name'),
    Session: str(q, 'Session'),
    Token: str(q, 'Token'),
    Template: {
      Type: str(t, 'Type'),
      Regexp: str(t, 'Regexp'),
      RemoveEmptyTags: t.RemoveEmptyTags === true,
    },
    Service: {
      Service: str(s, 'Service'),
      Failover: {
        NearestN: (f.NearestN as number | undefined) ?? 0,
        Datacenters: (f.Datacenters as string[] | undefined) ?? [],
      },
      OnlyPassing: s.OnlyPassing === true,
      IgnoreCheckIDs: (s.IgnoreCheckIDs as string[] | undefined) ?? [],
      Near: str(s, 'Near') || str(q, 'Near'),
      Tags: (s.Tags as string[] | undefined) ?? [],
      NodeMeta: (s.NodeMeta as Record<string, string> | undefined) ?? {},
      ServiceMeta: (s.ServiceMeta as Record<string, string> | undefined) ?? {},
    },
    DNS: { TTL: str((q.DNS as NormalisedBody | undefined) ?? {}, 'TTL') },
  };
  // A query that lives as long as a session (Consul deletes it when the session ends) is not
  // kept here: docs/consul-compatibility.md, "Prepared queries".
  if (def.Session !== '')
    throw invalid('Session-bound prepared queries are not supported: give the query a Name');
  if (def.Name === '' && def.Template.Type === '') throw invalid('Must be bound to a session');
  if (def.Token === REDACTED_TOKEN)
    throw invalid(
      `Bad Token '${REDACTED_TOKEN}', it looks like a query definition with a redacted token was submitted`,
    );
  if (def.Service.Service === '') throw invalid('Must provide a Service name to query');
  if (def.Service.Failover.NearestN < 0)
    throw invalid(`Bad NearestN '${def.Service.Failover.NearestN}', must be >= 0`);
  if (str(s, 'Peer') !== '' || str(s, 'SamenessGroup') !== '')
    throw invalid('Peer and SamenessGroup are not supported: Meshwork has no cluster peering');
  if ((s.Connect as NormalisedBody | undefined)?.Enabled === true)
    throw invalid('Connect is not supported: execute answers the service instances');
  if (def.DNS.TTL !== '' && parseDurationMs(def.DNS.TTL) === undefined)
    throw invalid(`Bad DNS TTL '${def.DNS.TTL}': time: invalid duration "${def.DNS.TTL}"`);
  if (def.Template.Type !== '' && def.Template.Type !== 'name_prefix_match')
    throw invalid(`Bad Template.Type '${def.Template.Type}'`);
  if (def.Template.Regexp !== '') {
    if (def.Template.Type === '') throw invalid('Template.Regexp needs Template.Type');
    try {
      new RegExp(def.Template.Regexp);
    } catch (err) {
      throw invalid(`Bad Regexp: ${(err as Error).message}`);
    }
  }
  return def;
}

/**
 * The query `idOrName` names: by ID, else by exact name, else the template whose name is the
 * longest prefix of it (Consul's PreparedQueryResolve).
 */
export function resolvePreparedQuery(
  all: readonly PreparedQueryDef[],
  idOrName: string,
): PreparedQueryDef | undefined {
  const byId = all.find((q) => q.ID === idOrName);
  if (byId !== undefined) return byId;
  const byName = all.find((q) => q.Name === idOrName && q.Name !== '');
  if (byName !== undefined) return byName;
  let best: PreparedQueryDef | undefined;
  for (const q of all) {
    if (q.Template.Type !== 'name_prefix_match' || !idOrName.startsWith(q.Name)) continue;
    if (best === undefined || q.Name.length > best.Name.length) best = q;
  }
  return best;
}

/**
 * A template rendered for the name it was resolved by (a plain query comes back as is). An
 * unknown `${...}` is refused, as Consul's interpolation fails on it.
 */
export function renderPreparedQuery(q: PreparedQueryDef, name: string): PreparedQueryDef {
  if (q.Template.Type === '') return q;
  const match = q.Template.Regexp === '' ? null : new RegExp(q.Template.Regexp).exec(name);
  const vars: Record<string, string> = {
    'name.full': name,
    'name.prefix': q.Name,
    'name.suffix': name.slice(q.Name.length),
    'agent.segment': '',
  };
  const render = (s: string): string =>
    s.replace(/\$\{([^}]*)\}/g, (_all, expr: string) => {
      const e = expr.trim();
      const m = /^match\((\d+)\)$/.exec(e);
      if (m !== null) return match?.[Number(m[1])] ?? '';
      const v = vars[e];
      if (v === undefined) throw invalid(`unknown variable or function in "\${${e}}"`);
      return v;
    });
  const tags = q.Service.Tags.map(render);
  return {
    ...q,
    Service: {
      ...q.Service,
      Service: render(q.Service.Service),
      Near: render(q.Service.Near),
      Tags: q.Template.RemoveEmptyTags ? tags.filter((t) => t !== '') : tags,
    },
  };
}
