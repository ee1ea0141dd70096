import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { Logger } from '../../../../../src/core/logger.js';
import type { FilterExchange, LocalReply } from '../../../../../src/proxy/filter.js';
import {
  AuthorizationCounts,
  createAuthorizationFilter,
  DENIED_BY_HEADER,
  registerAuthorizationMetrics,
} from '../../../../../src/proxy/filters/authorization/authorization-filter.js';
import {
  compileAuthorization,
  isAuthorizationProblems,
  type AuthorizationPolicyEntry,
} from '../../../../../src/proxy/filters/authorization/authorization-policy.js';
import { setPeerIdentity, type DownstreamSocket } from '../../../../../src/proxy/peer-identity.js';

/** A logger that keeps what it is given. */
function recordingLogger(): Logger & { lines: { level: string; obj: object; msg: string }[] } {
  const lines: { level: string; obj: object; msg: string }[] = [];
  const at =
    (level: string) =>
    (obj: object, msg = ''): void => {
      lines.push({ level, obj, msg });
    };
  const log = {
    lines,
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    child: () => log,
  };
  return log as unknown as Logger & { lines: typeof lines };
}

/** A fake exchange over a fake socket (`peer`: its verified identity, set as mTLS would). */
function exchange(
  o: {
    method?: string;
    path?: string;
    headers?: IncomingHttpHeaders;
    authority?: string;
    socket?: DownstreamSocket;
  } = {},
): FilterExchange & { path: string } {
  const headers = o.headers ?? { host: 'reviews:9080' };
  return {
    method: o.method ?? 'GET',
    path: o.path ?? '/',
    headers,
    authority: o.authority ?? (headers.host as string | undefined),
    socket: o.socket ?? { remoteAddress: '127.0.0.1', localAddress: '127.0.0.1', localPort: 15006 },
    setRequestHeader: () => undefined,
    addRequestHeader: () => undefined,
    removeRequestHeader: () => undefined,
  };
}

function filterFor(entries: AuthorizationPolicyEntry[], counts = new AuthorizationCounts()) {
  const compiled = compileAuthorization(entries);
  assert.ok(!isAuthorizationProblems(compiled));
  const logger = recordingLogger();
  const filter = createAuthorizationFilter({ compiled, destinationPort: 8080, counts, logger });
  return { filter, logger, counts };
}

const ORDERS = 'cluster.local/ns/default/sa/orders';

describe('authorization filter', () => {
  it('answers 403 naming the DENY policy in the body and x-meshwork-denied-by, and counts it', () => {
    const { filter, counts } = filterFor([
      {
        key: 'AuthorizationPolicy/default/deny-admin',
        spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] },
      },
    ]);
    const reply = filter.onRequest?.(exchange({ path: '/admin/users?x=1' })) as LocalReply;
    assert.equal(reply.status, 403);
    assert.deepEqual(reply.body, {
      error: {
        code: 'MESHWORK_ERR_PROXY_ACCESS_DENIED',
        message: 'access denied by AuthorizationPolicy default/deny-admin (DENY)',
        policy: 'default/deny-admin',
        action: 'DENY',
      },
    });
    assert.deepEqual(reply.headers, { [DENIED_BY_HEADER]: 'default/deny-admin' });
    assert.equal(filter.onRequest?.(exchange({ path: '/public' })), 'continue');
    assert.deepEqual(
      [...counts.denied.values()].filter((c) => c.denied > 0),
      [{ policy: 'default/deny-admin', action: 'DENY', denied: 1 }],
    );
  });

  it('answers 403 without naming any policy when no ALLOW policy matched', () => {
    const { filter } = filterFor([
      { key: 'AuthorizationPolicy/default/deny-all', spec: {} as AuthorizationPolicyEntry['spec'] },
    ]);
    const reply = filter.onRequest?.(exchange()) as LocalReply;
    assert.equal(reply.status, 403);
    assert.deepEqual(reply.body, {
      error: {
        code: 'MESHWORK_ERR_PROXY_ACCESS_DENIED',
        message: 'access denied: no ALLOW AuthorizationPolicy matched the request',
        action: 'ALLOW',
      },
    });
    assert.deepEqual(reply.headers, { [DENIED_BY_HEADER]: 'no-allow-match' });
  });

  it('takes the principal and namespace only from the verified peer identity of the socket', () => {
    const { filter } = filterFor([
      {
        key: 'AuthorizationPolicy/default/orders-only',
        spec: { action: 'ALLOW', rules: [{ from: [{ source: { principals: [ORDERS] } }] }] },
      },
    ]);
    const verified = { remoteAddress: '10.0.0.2' };
    setPeerIdentity(verified, {
      mtls: true,
      spiffeId: `spiffe://${ORDERS}`,
      principal: ORDERS,
      namespace: 'default',
    });
    assert.equal(filter.onRequest?.(exchange({ socket: verified })), 'continue');
    // Not verified (mtls false): no principal, whatever was recorded.
    const unverified = { remoteAddress: '10.0.0.3' };
    setPeerIdentity(unverified, { mtls: false, principal: ORDERS, namespace: 'default' });
    assert.equal((filter.onRequest?.(exchange({ socket: unverified })) as LocalReply).status, 403);
    // Plaintext; a header claiming the identity changes nothing.
    const claimed = exchange({
      headers: { host: 'reviews', 'x-meshwork-source-principal': ORDERS },
    });
    assert.equal((filter.onRequest?.(claimed) as LocalReply).status, 403);
  });

  it('evaluates the normalized path and forwards it; the query is kept and not matched', () => {
    const { filter } = filterFor([
      {
        key: 'AuthorizationPolicy/default/deny-admin',
        spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] },
      },
    ]);
    for (const path of ['/public/../admin', '/%61dmin', '/x/..\\admin?q=1'])
      assert.equal((filter.onRequest?.(exchange({ path })) as LocalReply).status, 403, path);
    const x = exchange({ path: '/a/./b/../c?next=/admin' });
    assert.equal(filter.onRequest?.(x), 'continue');
    assert.equal(x.path, '/a/c?next=/admin');
  });

  it('matches hosts on the exchange’s authority (an absolute-form target), not a different Host', () => {
    const { filter } = filterFor([
      {
        key: 'AuthorizationPolicy/default/deny-admin-host',
        spec: { action: 'DENY', rules: [{ to: [{ operation: { hosts: ['admin.internal'] } }] }] },
      },
    ]);
    const x = exchange({ headers: { host: 'public' }, authority: 'ADMIN.internal:8080' });
    assert.equal((filter.onRequest?.(x) as LocalReply).status, 403);
    assert.equal(filter.onRequest?.(exchange({ headers: { host: 'public' } })), 'continue');
  });

  it('uses the app port for ports and the socket for ipBlocks, destination.ip and connection.sni', () => {
    const { filter } = filterFor([
      {
        key: 'AuthorizationPolicy/default/allow',
        spec: {
          action: 'ALLOW',
          rules: [
            {
              from: [{ source: { ipBlocks: ['10.0.0.0/8'] } }],
              to: [{ operation: { ports: ['8080'] } }],
              when: [
                { key: 'destination.ip', values: ['10.9.9.9'] },
                { key: 'connection.sni', values: ['reviews*'] },
              ],
            },
          ],
        },
      },
    ]);
    const socket = {
      remoteAddress: '::ffff:10.1.1.1',
      localAddress: '10.9.9.9',
      servername: 'reviews.default',
    };
    setPeerIdentity(socket, { mtls: true });
    assert.equal(filter.onRequest?.(exchange({ socket })), 'continue');
    const other = { ...socket, remoteAddress: '192.168.1.1' };
    setPeerIdentity(other, { mtls: true });
    assert.equal((filter.onRequest?.(exchange({ socket: other })) as LocalReply).status, 403);
    const plaintext = { ...socket };
    assert.equal((filter.onRequest?.(exchange({ socket: plaintext })) as LocalReply).status, 403);
  });

  it('AUDIT: logs one JSON line per matching AUDIT policy at info, without changing the decision', () => {
    const { filter, logger, counts } = filterFor([
      {
        key: 'AuthorizationPolicy/default/audit-writes',
        spec: { action: 'AUDIT', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] },
      },
    ]);
    assert.equal(
      filter.onRequest?.(exchange({ method: 'POST', path: '/orders?id=1' })),
      'continue',
    );
    assert.equal(filter.onRequest?.(exchange({ method: 'GET' })), 'continue');
    const audits = logger.lines.filter((l) => l.msg === 'authorization audit');
    assert.equal(audits.length, 1);
    assert.equal(audits[0]?.level, 'info');
    assert.deepEqual(audits[0]?.obj, {
      policy: 'default/audit-writes',
      method: 'POST',
      path: '/orders',
      host: 'reviews',
      principal: undefined,
      sourceIp: '127.0.0.1',
      allowed: true,
    });
    assert.equal(counts.audited.get('default/audit-writes'), 1);
  });

  it('exports meshwork_sidecar_authz_denied_total and _audited_total, kept across snapshots', async () => {
    const counts = new AuthorizationCounts();
    const registry = new Registry();
    registerAuthorizationMetrics(registry, counts);
    const deny: AuthorizationPolicyEntry = {
      key: 'AuthorizationPolicy/default/deny-post',
      spec: { action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] },
    };
    const first = filterFor([deny], counts).filter;
    first.onRequest?.(exchange({ method: 'POST' }));
    // The next snapshot's filter counts on from the same numbers.
    const second = filterFor(
      [
        deny,
        {
          key: 'AuthorizationPolicy/default/only-get',
          spec: { action: 'ALLOW', rules: [{ to: [{ operation: { methods: ['GET'] } }] }] },
        },
      ],
      counts,
    ).filter;
    second.onRequest?.(exchange({ method: 'POST' }));
    second.onRequest?.(exchange({ method: 'PUT' }));
    const text = await registry.metrics();
    assert.match(
      text,
      /meshwork_sidecar_authz_denied_total\{policy="default\/deny-post",action="DENY"\} 2/,
    );
    assert.match(text, /meshwork_sidecar_authz_denied_total\{policy="",action="ALLOW"\} 1/);
    assert.match(text, /# TYPE meshwork_sidecar_authz_audited_total counter/);
  });
});
