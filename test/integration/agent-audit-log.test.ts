/**
 * The audit log (issue 20): every write to a real agent, allowed or refused, is one JSON line in
 * the --audit-log file with time, accessor id (never the secret), source IP, method, path (no
 * query), the resources touched and the status.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditRecord } from '../../src/registry-api/audit-log.js';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { until } from '../helpers/until.js';

describe('audit log', () => {
  let agent: TestAgent;
  let file = '';
  let cleanup = (): void => undefined;
  let management = { accessor: '', secret: '' };
  const as = (secret: string) => ({ 'x-consul-token': secret });
  const lines = (): AuditRecord[] =>
    existsSync(file)
      ? readFileSync(file, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as AuditRecord)
      : [];

  before(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'meshwork-audit-'));
    file = join(dataDir, 'audit.jsonl');
    agent = await startTestAgent({
      sqlite: true,
      dataDir,
      flags: { acl: { enabled: true, defaultPolicy: 'deny' }, auditLog: file },
    });
    cleanup = () => rmSync(dataDir, { recursive: true, force: true });
    const boot = await http(agent.url, 'PUT', '/v1/acl/bootstrap');
    management = { accessor: boot.body.AccessorID as string, secret: boot.body.SecretID as string };
  });
  after(async () => {
    await agent.stop();
    cleanup();
  });

  it('writes one line per write, allowed or refused, never a secret', async () => {
    const m = as(management.secret);
    const writes: [string, string, unknown, Record<string, string>, number, string[]][] = [
      [
        'PUT',
        '/v1/agent/service/register',
        { Name: 'web', ID: 'web-1', Port: 80, Check: { TTL: '60s' } },
        m,
        200,
        ['service:web'],
      ],
      ['PUT', '/v1/agent/check/pass/service:web-1', undefined, m, 200, ['service:web']],
      [
        'PUT',
        '/api/v1/instances',
        { service: 'api', id: 'api-1', address: '10.0.0.1', port: 80 },
        m,
        200,
        ['service:api'],
      ],
      ['DELETE', '/api/v1/instances/api-1', undefined, m, 200, ['service:api']],
      ['PUT', `/v1/kv/app/x?token=${management.secret}`, 'v', {}, 200, ['key:app/x']],
      ['DELETE', '/api/v1/kv/app/x', undefined, m, 200, ['key:app/x']],
      [
        'POST',
        '/api/v1/mesh/apply',
        {
          documents: [
            {
              apiVersion: 'networking.istio.io/v1beta1',
              kind: 'DestinationRule',
              metadata: { name: 'web' },
              spec: { host: 'web' },
            },
          ],
        },
        m,
        200,
        ['mesh'],
      ],
      ['DELETE', '/api/v1/mesh/resources/DestinationRule/default/web', undefined, m, 200, ['mesh']],
      ['PUT', '/v1/acl/policy', { Name: 'p1', Rules: '' }, m, 200, ['acl']],
      ['PUT', '/v1/agent/service/deregister/web-1', undefined, {}, 403, ['service:web']],
    ];
    const before = lines().length;
    for (const [method, path, body, headers, status] of writes) {
      const r = await http(agent.url, method, path, body, headers);
      assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
    }
    // A read is not audited.
    await http(agent.url, 'GET', '/v1/kv/app/x', undefined, m);
    const got = await until(
      () => {
        const l = lines().slice(before);
        return l.length >= writes.length ? l : undefined;
      },
      10_000,
      'every write audited',
    );
    assert.equal(got.length, writes.length);
    for (const [i, [method, path, , headers, status, what]] of writes.entries()) {
      const line = got[i] as AuditRecord;
      assert.equal(line.method, method);
      assert.equal(line.path, path.split('?')[0]);
      assert.equal(line.status, status);
      assert.deepEqual(line.what, what);
      assert.equal(line.sourceIp, '127.0.0.1');
      assert.ok(!Number.isNaN(Date.parse(line.time)));
      assert.equal(
        line.accessorId,
        Object.keys(headers).length === 0 && !path.includes('token=')
          ? 'anonymous'
          : management.accessor,
      );
    }
    assert.ok(
      !readFileSync(file, 'utf8').includes(management.secret),
      'no secret in the audit log',
    );
  });
});
