/** Agent options: precedence, one error listing every problem, and arbitrary files never crash. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_AGENT_OPTIONS, resolveAgentOptions } from '../../../src/agent/options.js';
import { ERROR_CODES, isMeshError } from '../../../src/core/errors.js';
import { makeTestPki, type TestPki } from '../../helpers/tls-certs.js';

const dir = mkdtempSync(join(tmpdir(), 'meshwork-config-'));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('resolveAgentOptions', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('uses the defaults: 127.0.0.1:8500, ./.meshwork/data, durable store', () => {
    const o = resolveAgentOptions({});
    assert.equal(o.http, '127.0.0.1:8500');
    assert.equal(o.dataDir, './.meshwork/data');
    assert.equal(o.dev, false);
    assert.equal(o.datacenter, DEFAULT_AGENT_OPTIONS.datacenter);
    assert.ok(Object.isFrozen(o));
  });

  it('applies defaults < file < env < flags', () => {
    const f = file('p.yaml', 'http: 127.0.0.1:1001\ndataDir: /from/file\nlogLevel: debug\n');
    const o = resolveAgentOptions({
      file: f,
      env: { MESHWORK_AGENT__HTTP: '127.0.0.1:1002', MESHWORK_AGENT__DATA_DIR: '/from/env' },
      flags: { http: '127.0.0.1:1003' },
    });
    assert.equal(o.http, '127.0.0.1:1003');
    assert.equal(o.dataDir, '/from/env');
    assert.equal(o.logLevel, 'debug');
  });

  it('reads allowedHosts and allowedOrigins (default none) from files, env lists and flags', () => {
    assert.deepEqual(resolveAgentOptions({}).allowedHosts, []);
    assert.deepEqual(resolveAgentOptions({}).allowedOrigins, []);
    const o = resolveAgentOptions({
      file: file('access.yaml', 'allowedOrigins: ["https://ui.example.com:8443"]\n'),
      env: { MESHWORK_AGENT__ALLOWED_HOSTS: 'consul.internal, *.mesh.example' },
    });
    assert.deepEqual(o.allowedHosts, ['consul.internal', '*.mesh.example']);
    assert.deepEqual(o.allowedOrigins, ['https://ui.example.com:8443']);
    assert.deepEqual(resolveAgentOptions({ flags: { allowedHosts: ['*'] } }).allowedHosts, ['*']);
    assert.throws(
      () =>
        resolveAgentOptions({
          flags: { allowedHosts: ['host:8500'], allowedOrigins: ['https://ui.example.com/path'] },
        }),
      (err: unknown) => {
        assert.ok(isMeshError(err, ERROR_CODES.CONFIG_INVALID));
        assert.match(err.message, /allowedHosts\[0\]: must be a host name without port/);
        assert.match(err.message, /allowedOrigins\[0\]: must be an origin/);
        return true;
      },
    );
  });

  it('throws one error listing every problem', () => {
    const f = file('bad.yaml', 'http: nowhere\nlogLevel: loud\ncolour: blue\n');
    assert.throws(
      () => resolveAgentOptions({ file: f, env: { MESHWORK_AGENT__DEV: 'maybe' } }),
      (err: unknown) => {
        assert.ok(isMeshError(err, ERROR_CODES.CONFIG_INVALID));
        for (const needle of ['http', 'logLevel', 'colour', 'MESHWORK_AGENT__DEV'])
          assert.match(err.message, new RegExp(needle));
        return true;
      },
    );
  });

  it('reports an unreadable file with its path', () => {
    assert.throws(
      () => resolveAgentOptions({ file: join(dir, 'missing.yaml') }),
      (err: unknown) =>
        isMeshError(err, ERROR_CODES.CONFIG_UNREADABLE) &&
        /missing\.yaml: ENOENT/.test(err.message),
    );
  });

  it('serves DNS on 127.0.0.1:8600, domain consul, by default', () => {
    const o = resolveAgentOptions({});
    assert.equal(o.dns.listen, '127.0.0.1:8600');
    assert.equal(o.dns.domain, 'consul');
    assert.equal(o.dns.onlyPassing, false);
    assert.equal(o.dns.defaultTtlMs, 0);
  });

  it('merges the dns section key by key: defaults < file < env < flags', () => {
    const f = file(
      'dns.yaml',
      'dns:\n  domain: Mesh.Example.\n  onlyPassing: true\n  serviceTtlMs: { web: 30000 }\n  listen: 127.0.0.1:1\n',
    );
    const o = resolveAgentOptions({
      file: f,
      env: {
        MESHWORK_DNS__LISTEN: '127.0.0.1:2',
        MESHWORK_DNS__RECURSORS: '1.1.1.1, 127.0.0.1:5353',
      },
      flags: { dns: { listen: 'off' } },
    });
    assert.equal(o.dns.listen, 'off');
    assert.equal(o.dns.domain, 'mesh.example', 'lowercase, without the trailing dot');
    assert.equal(o.dns.onlyPassing, true);
    assert.deepEqual(o.dns.serviceTtlMs, { web: 30000 });
    assert.deepEqual(o.dns.recursors, ['1.1.1.1', '127.0.0.1:5353']);
    assert.equal(resolveAgentOptions({ file: file('d.yaml', 'dns: "off"\n') }).dns.listen, 'off');
  });

  it('lists every bad DNS option with the others', () => {
    const f = file(
      'baddns.yaml',
      'http: nowhere\ndns:\n  domain: "bad domain"\n  defaultTtlMs: 1500\n  colour: 1\n',
    );
    assert.throws(
      () =>
        resolveAgentOptions({
          file: f,
          env: { MESHWORK_DNS__ANSWER_LIMIT: 'many' },
          flags: { dns: { listen: 'nowhere' } },
        }),
      (err: unknown) => {
        assert.ok(isMeshError(err, ERROR_CODES.CONFIG_INVALID));
        for (const needle of [
          /http:/,
          /dns\.listen: must be host:port/,
          /dns\.domain: must be a DNS name/,
          /dns\.defaultTtlMs: must be whole seconds/,
          /dns\.colour: unknown key/,
          /MESHWORK_DNS__ANSWER_LIMIT: must be a whole number/,
        ])
          assert.match(err.message, needle);
        return true;
      },
    );
    assert.throws(
      () => resolveAgentOptions({ file: file('n.yaml', 'dns: 5\n') }),
      /dns: must be a mapping/,
    );
  });

  it('answers any file content with options or a config error, never anything else', () => {
    const p = join(dir, 'fuzz.yaml');
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string().map((s) => `services:\n  - ${s}\n`),
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc.constantFrom('a: &a [*a]', '{{{{', '- - -', 'http: [1, 2]', '\u0000\u0001'),
        ),
        (text) => {
          writeFileSync(p, text);
          try {
            resolveAgentOptions({ file: p });
          } catch (err) {
            assert.ok(
              isMeshError(err, ERROR_CODES.CONFIG_INVALID) ||
                isMeshError(err, ERROR_CODES.CONFIG_UNREADABLE),
              String(err),
            );
          }
        },
      ),
      { numRuns: 500, seed: 11 },
    );
  });

  it('reads the check floors, the cap and the KV quota from the file, env and flags', () => {
    const d = resolveAgentOptions({});
    assert.deepEqual(d.checks, {
      minIntervalMs: 1000,
      minTimeoutMs: 100,
      minTtlMs: 1000,
      minDeregisterCriticalAfterMs: 60_000,
      maxPerInstance: 32,
      updateIntervalMs: 300_000,
    });
    assert.equal(d.kv.quotaBytes, 256 * 1024 * 1024);
    const f = file('floors.yaml', 'checks:\n  minIntervalMs: 5000\nkv:\n  quotaBytes: 1024\n');
    const o = resolveAgentOptions({
      file: f,
      env: {
        MESHWORK_CHECKS__MIN_TTL_MS: '2000',
        MESHWORK_KV__QUOTA_BYTES: '2048',
        MESHWORK_CHECKS__UPDATE_INTERVAL_MS: '0',
      },
      flags: { checks: { maxPerInstance: 4 } },
    });
    assert.equal(o.checks.updateIntervalMs, 0);
    assert.equal(o.checks.minIntervalMs, 5000);
    assert.equal(o.checks.minTtlMs, 2000);
    assert.equal(o.checks.minTimeoutMs, 100);
    assert.equal(o.checks.maxPerInstance, 4);
    assert.equal(o.kv.quotaBytes, 2048);
    assert.throws(
      () =>
        resolveAgentOptions({
          flags: { checks: { minIntervalMs: 0, maxPerInstance: 33, updateIntervalMs: -1 } },
        }),
      (e: unknown) =>
        isMeshError(e, ERROR_CODES.CONFIG_INVALID) &&
        /checks\.minIntervalMs: must be at least 1 ms/.test(e.message) &&
        /checks\.maxPerInstance/.test(e.message) &&
        /checks\.updateIntervalMs/.test(e.message),
    );
  });

  // Issue 20: the mesh CA's options and how the agent reaches a secured etcd.
  it('reads the trust domain, the leaf lifetime and the etcd TLS and auth options', () => {
    const d = resolveAgentOptions({});
    assert.equal(d.trustDomain, 'cluster.local');
    assert.equal(d.caLeafTtlMs, 86_400_000);
    assert.equal(d.etcdCa, undefined);
    const o = resolveAgentOptions({
      file: file('ca.yaml', 'trustDomain: example.org\ncaLeafTtlMs: 3600000\n'),
      env: {
        MESHWORK_AGENT__ETCD_USERNAME: 'root',
        MESHWORK_AGENT__ETCD_PASSWORD: 'pw',
        MESHWORK_AGENT__CA_LEAF_TTL_MS: '7200000',
      },
      flags: { etcdCa: '/etc/etcd/ca.pem', etcdCert: '/c.pem', etcdKey: '/k.pem' },
    });
    assert.equal(o.trustDomain, 'example.org');
    assert.equal(o.caLeafTtlMs, 7_200_000);
    assert.deepEqual(
      [o.etcdCa, o.etcdCert, o.etcdKey, o.etcdUsername, o.etcdPassword],
      ['/etc/etcd/ca.pem', '/c.pem', '/k.pem', 'root', 'pw'],
    );
    assert.throws(
      () =>
        resolveAgentOptions({
          flags: {
            trustDomain: 'Bad Domain',
            caLeafTtlMs: 1000,
            etcdCert: '/c.pem',
            etcdUsername: 'root',
          },
        }),
      (e: unknown) =>
        isMeshError(e, ERROR_CODES.CONFIG_INVALID) &&
        /trustDomain: lowercase/.test(e.message) &&
        /caLeafTtlMs: must be at least 1 minute/.test(e.message) &&
        /etcdKey: give etcdCert and etcdKey together/.test(e.message) &&
        /etcdCa: give the CA/.test(e.message) &&
        /etcdPassword: give etcdUsername and etcdPassword together/.test(e.message),
    );
  });

  // Issue 20: registry ACLs as Consul's acl block, the audit log and the per-client cap.
  it('turns ACLs on from the file, env or flags, key by key, with Consul-like defaults', () => {
    const d = resolveAgentOptions({});
    assert.deepEqual(d.acl, {
      enabled: false,
      defaultPolicy: 'allow',
      dns: false,
      refreshMs: 1000,
    });
    assert.equal(d.auditLog, '');
    assert.equal(d.httpMaxConnsPerClient, 200);
    const f = file(
      'acl.yaml',
      'acl:\n  enabled: true\n  defaultPolicy: deny\nauditLog: /tmp/a.jsonl\n',
    );
    const o = resolveAgentOptions({
      file: f,
      env: { MESHWORK_ACL__DNS: 'true', MESHWORK_AGENT__HTTP_MAX_CONNS_PER_CLIENT: '5' },
      flags: { acl: { refreshMs: 50 } },
    });
    assert.deepEqual(o.acl, { enabled: true, defaultPolicy: 'deny', dns: true, refreshMs: 50 });
    assert.equal(o.auditLog, '/tmp/a.jsonl');
    assert.equal(o.httpMaxConnsPerClient, 5);
    assert.throws(
      () => resolveAgentOptions({ env: { MESHWORK_ACL__DEFAULT_POLICY: 'maybe' } }),
      (e: unknown) =>
        isMeshError(e, ERROR_CODES.CONFIG_INVALID) && /acl\.defaultPolicy/.test(e.message),
    );
  });

  // Issue 16: the floors hold for the config file's services too, before any port opens.
  it('refuses config services whose checks are below the floors, listing each', () => {
    const services = [
      { service: 'a', address: '127.0.0.1', port: 1, checks: [{ http: 'http://x/', interval: 1 }] },
      { service: 'b', address: '127.0.0.1', port: 1, checks: [{ ttl: 5 }] },
      { service: 'c', address: '127.0.0.1', port: 1, checks: [{ ttl: '5s' }, { ttl: '6s' }] },
    ];
    assert.throws(
      () => resolveAgentOptions({ flags: { services, checks: { maxPerInstance: 1 } } }),
      (e: unknown) => {
        assert.ok(isMeshError(e, ERROR_CODES.CONFIG_INVALID));
        assert.match(e.message, /services\[0\]\.checks\[0\]\.interval: must be at least 1000 ms/);
        assert.match(e.message, /services\[1\]\.checks\[0\]\.ttl: .*write "5s"/);
        assert.match(e.message, /services\[2\]\.checks: at most 1 checks per instance/);
        return true;
      },
    );
    const lowered = resolveAgentOptions({
      flags: { services: services.slice(0, 1), checks: { minIntervalMs: 1 } },
    });
    assert.equal(lowered.services.length, 1);
  });

  it('reads consul.legacyVerbs from the file, env and flags, defaulting to true', () => {
    assert.equal(resolveAgentOptions({}).consul.legacyVerbs, true);
    const f = file('consul.yaml', 'consul:\n  legacyVerbs: false\n');
    assert.equal(resolveAgentOptions({ file: f }).consul.legacyVerbs, false);
    assert.equal(
      resolveAgentOptions({ file: f, env: { MESHWORK_CONSUL__LEGACY_VERBS: 'true' } }).consul
        .legacyVerbs,
      true,
    );
    assert.equal(
      resolveAgentOptions({
        env: { MESHWORK_CONSUL__LEGACY_VERBS: 'true' },
        flags: { consul: { legacyVerbs: false } },
      }).consul.legacyVerbs,
      false,
    );
    assert.equal(
      resolveAgentOptions({ file: file('empty-consul.yaml', 'consul: {}\n') }).consul.legacyVerbs,
      true,
    );
    assert.throws(
      () =>
        resolveAgentOptions({ file: file('bad-consul.yaml', 'consul:\n  legacyVerb: false\n') }),
      (e: unknown) =>
        isMeshError(e, ERROR_CODES.CONFIG_INVALID) &&
        /consul.*unknown key/.test((e as Error).message),
    );
  });
});

describe('resolveAgentOptions: https and tls (issue 20)', () => {
  let pki: TestPki;
  before(() => {
    pki = makeTestPki();
  });
  after(() => pki.remove());

  /** The problems resolving `input` lists (fails if it resolves). */
  const problemsOf = (input: Parameters<typeof resolveAgentOptions>[0]): string[] => {
    try {
      resolveAgentOptions(input);
    } catch (err) {
      assert.ok(isMeshError(err, ERROR_CODES.CONFIG_INVALID));
      return err.details?.problems as string[];
    }
    return assert.fail('should throw');
  };

  it('takes the tls section from a file, env over it key by key, flags over env', () => {
    const f = join(pki.dir, 'tls.yaml');
    writeFileSync(
      f,
      `https: 127.0.0.1:0\ntls:\n  certFile: ${pki.otherServer.certFile}\n  keyFile: ${pki.server.keyFile}\n`,
    );
    const o = resolveAgentOptions({
      file: f,
      env: {
        MESHWORK_AGENT__HTTPS: '127.0.0.1:8501',
        MESHWORK_TLS__CA_FILE: pki.caFile,
        MESHWORK_TLS__VERIFY_INCOMING: 'true',
      },
      flags: { tls: { certFile: pki.server.certFile } },
    });
    assert.equal(o.https, '127.0.0.1:8501');
    assert.deepEqual(o.tls, {
      certFile: pki.server.certFile,
      keyFile: pki.server.keyFile,
      caFile: pki.caFile,
      verifyIncoming: true,
    });
    assert.equal(resolveAgentOptions({}).https, 'off');
  });

  it('refuses no API at all, TLS settings without https, and https without a certificate', () => {
    assert.deepEqual(problemsOf({ flags: { http: 'off' } }), [
      'http: off, and https is off too: the agent would serve no API',
    ]);
    assert.deepEqual(
      problemsOf({ flags: { tls: { certFile: pki.server.certFile, verifyIncoming: true } } }),
      [
        'tls.certFile: set, but https is off (give https <host:port>)',
        'tls.verifyIncoming: set, but https is off (give https <host:port>)',
      ],
    );
    assert.deepEqual(problemsOf({ flags: { https: '127.0.0.1:0' } }), [
      'tls.certFile (--tls-cert-file): required with https, with tls.keyFile (--tls-key-file) (or tls.auto: a certificate from the mesh CA)',
    ]);
  });

  it('reads the files: a missing one is a problem naming the key, the flag and the reason', () => {
    const absent = join(pki.dir, 'absent.pem');
    assert.deepEqual(
      problemsOf({
        flags: { https: '127.0.0.1:0', tls: { certFile: absent, keyFile: pki.server.keyFile } },
      }),
      [`tls.certFile (--tls-cert-file): cannot read ${absent}: ENOENT`],
    );
  });
});
