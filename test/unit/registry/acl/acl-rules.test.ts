/** The ACL rule language: Consul's HCL and JSON forms, errors naming the line, never a crash. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  AclRulesError,
  parseAclRules,
  type ParsedRules,
} from '../../../../src/registry/acl/acl-rules.js';

const plain = (r: ParsedRules) => ({
  service: [
    Object.fromEntries(r.segmented.service.exact),
    Object.fromEntries(r.segmented.service.prefix),
  ],
  kv: [Object.fromEntries(r.segmented.kv.exact), Object.fromEntries(r.segmented.kv.prefix)],
  node: [Object.fromEntries(r.segmented.node.exact), Object.fromEntries(r.segmented.node.prefix)],
  agent: [
    Object.fromEntries(r.segmented.agent.exact),
    Object.fromEntries(r.segmented.agent.prefix),
  ],
  session: [
    Object.fromEntries(r.segmented.session.exact),
    Object.fromEntries(r.segmented.session.prefix),
  ],
  scalar: r.scalar,
});

describe('parseAclRules', () => {
  it('reads every rule kind python-consul and npm consul users send, in HCL', () => {
    const r = parseAclRules(`
      # services
      service_prefix "" { policy = "read" }
      service "web" {
        policy = "write"
        intentions = "read"
      }
      key_prefix "app/" { policy = "list" } // list reads
      key "app/secret" { policy = "deny" }
      node_prefix "" { policy = "read" }
      node "n1" { policy = "write" }
      agent_prefix "" { policy = "read" }
      /* scalar
         rules */
      mesh = "write"
      acl = "read"
      operator = "write"
      session_prefix "" { policy = "write" }
      session "n1" { policy = "deny" }
      keyring = "read"
    `);
    assert.deepEqual(plain(r), {
      service: [{ web: 'write' }, { '': 'read' }],
      kv: [{ 'app/secret': 'deny' }, { 'app/': 'read' }],
      node: [{ n1: 'write' }, { '': 'read' }],
      agent: [{}, { '': 'read' }],
      session: [{ n1: 'deny' }, { '': 'write' }],
      scalar: { mesh: 'write', acl: 'read', operator: 'write' },
    });
  });

  it('reads the JSON form, objects or arrays of objects', () => {
    const r = parseAclRules(
      JSON.stringify({
        service_prefix: { '': { policy: 'read' } },
        service: [{ web: [{ policy: 'write' }] }],
        key: { k: { policy: 'deny' } },
        mesh: 'read',
      }),
    );
    assert.deepEqual(plain(r).service, [{ web: 'write' }, { '': 'read' }]);
    assert.deepEqual(plain(r).kv, [{ k: 'deny' }, {}]);
    assert.deepEqual(r.scalar, { mesh: 'read' });
  });

  it('merges repeated rules with deny beating write beating read', () => {
    const r = parseAclRules(
      'service "a" { policy = "read" }\nservice "a" { policy = "write" }\nservice "b" { policy = "deny" }\nservice "b" { policy = "write" }',
    );
    assert.deepEqual(plain(r).service[0], { a: 'write', b: 'deny' });
  });

  it('names the line and the reason of what it refuses', () => {
    const refused = (text: string, reason: RegExp) =>
      assert.throws(
        () => parseAclRules(text),
        (e: unknown) => e instanceof AclRulesError && reason.test(e.reason),
      );
    refused(
      'service "a" { policy = "admin" }',
      /^line 1: policy must be "read", "write" or "deny"/,
    );
    refused('\nservize "a" { policy = "read" }', /^line 2: unknown resource "servize"/);
    refused('service "a" { }', /^line 1: service "a" has no policy/);
    refused('service "a" { policy = "read"', /block is never closed/);
    refused('service "a { policy = "read" }', /string is not closed/);
    refused('mesh = write', /^line 1: expected a quoted policy/);
    refused('key "a" { policy = "list" }', /policy must be/);
    refused('service "a" { colour = "red" }', /unknown attribute "colour"/);
    refused('{"service": 1}', /rules.service: must be an object/);
    refused('{"nope": {}}', /unknown resource "nope"/);
    refused('{', /not valid JSON/);
  });

  it('answers rules or an AclRulesError for any text, never another error', () => {
    const piece = fc.constantFrom(
      'service',
      'service_prefix',
      'key_prefix',
      'mesh',
      'acl',
      'operator',
      'node',
      '"',
      '"x"',
      '{',
      '}',
      '=',
      'policy',
      '"read"',
      '"write"',
      '"deny"',
      '#',
      '//',
      '/*',
      '*/',
      '\n',
      ' ',
      ',',
      '\\',
      '[',
      ']',
      ':',
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.array(piece, { maxLength: 30 }).map((p) => p.join(' ')),
          fc.json(),
        ),
        (text) => {
          try {
            parseAclRules(text);
          } catch (err) {
            assert.ok(err instanceof AclRulesError, String(err));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('reads back any generated rule set, in HCL and in JSON', () => {
    const kindName = fc.constantFrom(
      'service',
      'service_prefix',
      'key',
      'key_prefix',
      'node',
      'node_prefix',
      'agent',
      'agent_prefix',
    );
    const disp = fc.constantFrom('read', 'write', 'deny');
    const rule = fc.tuple(kindName, fc.string({ maxLength: 12 }), disp);
    fc.assert(
      fc.property(
        fc.array(rule, { maxLength: 8 }),
        fc.option(disp, { nil: undefined }),
        (rules, mesh) => {
          const hcl =
            rules.map(([k, n, d]) => `${k} ${JSON.stringify(n)} { policy = "${d}" }`).join('\n') +
            (mesh === undefined ? '' : `\nmesh = "${mesh}"`);
          const json: Record<string, unknown> = {};
          for (const [k, n, d] of rules) {
            const byName = (json[k] ??= {}) as Record<string, unknown>;
            // JSON objects keep one entry per name: the last given, as in HCL's merge only if equal.
            byName[n] = { policy: d };
          }
          const fromHcl = parseAclRules(hcl);
          // Every rule given is there with at least its own strength (merges only strengthen).
          const rank = { read: 1, write: 2, deny: 3 } as const;
          for (const [k, n, d] of rules) {
            const spec = k.endsWith('_prefix') ? 'prefix' : 'exact';
            const kind = ({ service: 'service', key: 'kv', node: 'node', agent: 'agent' } as const)[
              k.replace('_prefix', '') as 'service'
            ];
            const got = fromHcl.segmented[kind][spec].get(n);
            assert.ok(got !== undefined && rank[got] >= rank[d]);
          }
          assert.equal(fromHcl.scalar.mesh, mesh);
          parseAclRules(JSON.stringify(json));
        },
      ),
      { numRuns: 500 },
    );
  });
});
