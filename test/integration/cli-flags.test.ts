/**
 * `meshwork register` and `meshwork instances` turn their flags into the request they send: seen
 * by a real node:http server on port 0 that records it.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { command as instances } from '../../src/cli/commands/instances.js';
import { command as register } from '../../src/cli/commands/register.js';
import { ERROR_CODES } from '../../src/core/errors.js';
import { silentIo } from '../helpers/cli.js';

interface Recorded {
  method: string;
  url: string;
  body: string;
}

describe('register and instances flags', () => {
  let server: Server;
  let url = '';
  const seen: Recorded[] = [];

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', body });
        res.setHeader('content-type', 'application/json');
        res.end(
          req.method === 'PUT'
            ? JSON.stringify({
                instance: { id: 'i-1', service: 's', status: 'critical' },
                index: 7,
              })
            : JSON.stringify({ instances: [], index: 7 }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  /** Runs a command against the recording server; returns what it sent (or what it threw). */
  async function send(
    cmd: typeof register,
    argv: string[],
  ): Promise<Recorded | { code: string; message: string }> {
    seen.length = 0;
    try {
      assert.equal(await cmd.run([...argv, '--registry', url], silentIo()), 0);
    } catch (err) {
      return err as { code: string; message: string };
    }
    assert.equal(seen.length, 1);
    return seen[0] as Recorded;
  }

  it('registers with every flag in its place, checks sharing interval and deregister-after', async () => {
    const sent = (await send(register, [
      ...['--service', 'payments', '--id', 'p-1', '--address', '10.0.0.5', '--port', '8080'],
      ...['--named-port', 'grpc=9090', '--named-port', 'admin=9901', '--tag', 'v2', '--tag', 'eu'],
      ...['--meta', 'zone=eu-1', '--meta', 'version=a=b', '--weight', '5', '--priority', '2'],
      ...[
        '--ttl',
        '15s',
        '--http-check',
        'http://10.0.0.5:8080/health',
        '--tcp-check',
        '10.0.0.5:8080',
      ],
      ...['--interval', '5s', '--deregister-after', '1m'],
    ])) as Recorded;
    assert.equal(sent.method, 'PUT');
    assert.equal(sent.url, '/api/v1/instances');
    assert.deepEqual(JSON.parse(sent.body), {
      service: 'payments',
      address: '10.0.0.5',
      port: 8080,
      id: 'p-1',
      ports: { grpc: 9090, admin: 9901 },
      tags: ['v2', 'eu'],
      meta: { zone: 'eu-1', version: 'a=b' },
      weights: { passing: 5, warning: 1 },
      priority: 2,
      checks: [
        { ttl: '15s', deregisterCriticalAfter: '1m' },
        { http: 'http://10.0.0.5:8080/health', interval: '5s', deregisterCriticalAfter: '1m' },
        { tcp: '10.0.0.5:8080', interval: '5s', deregisterCriticalAfter: '1m' },
      ],
    });
  });

  it('registers with only the required flags, leaving every other field out', async () => {
    const sent = (await send(register, [
      ...['--service', 'web', '--address', '127.0.0.1', '--port', '3000', '--ttl', '10s'],
    ])) as Recorded;
    assert.deepEqual(JSON.parse(sent.body), {
      service: 'web',
      address: '127.0.0.1',
      port: 3000,
      checks: [{ ttl: '10s' }],
    });
  });

  it('refuses bad numbers and pairs as usage errors, the first in flag-processing order', async () => {
    const base = ['--service', 'web', '--address', '127.0.0.1'];
    const cases: [string[], string][] = [
      [['--port', 'x'], '--port must be a whole number, got "x"'],
      [['--port', '1', '--weight', '1.5'], '--weight must be a whole number, got "1.5"'],
      [['--port', '1', '--priority=-1'], '--priority must be a whole number, got "-1"'],
      [['--port', '1', '--meta', 'novalue'], '--meta takes KEY=VALUE, got "novalue"'],
      [['--port', '1', '--named-port', 'grpc=x'], '--named-port must be a whole number, got "x"'],
      [['--port', '1', '--named-port', '=1'], '--named-port takes KEY=VALUE, got "=1"'],
      [
        ['--port', 'x', '--meta', 'bad', '--weight', 'w', '--priority', 'p', '--named-port', 'n=x'],
        '--named-port must be a whole number, got "x"',
      ],
      [
        ['--port', 'x', '--meta', 'bad', '--weight', 'w', '--priority', 'p'],
        '--weight must be a whole number, got "w"',
      ],
      [
        ['--port', 'x', '--meta', 'bad', '--priority', 'p'],
        '--priority must be a whole number, got "p"',
      ],
      [['--port', 'x', '--meta', 'bad'], '--port must be a whole number, got "x"'],
    ];
    for (const [argv, message] of cases) {
      const err = (await send(register, [...base, ...argv])) as { code: string; message: string };
      assert.equal(err.code, ERROR_CODES.CLI_USAGE, argv.join(' '));
      assert.equal(err.message, message, argv.join(' '));
    }
  });

  it('lists instances with --status and --tag as query parameters, or none', async () => {
    const all = (await send(instances, ['payments', '--json'])) as Recorded;
    assert.equal(all.url, '/api/v1/services/payments/instances');
    const some = (await send(instances, [
      ...['payments', '--status', 'passing,,warning', '--tag', 'v2', '--tag', 'eu'],
    ])) as Recorded;
    assert.equal(
      some.url,
      '/api/v1/services/payments/instances?status=passing%2Cwarning&tag=v2&tag=eu',
    );
    const bad = (await send(instances, ['payments', '--status', 'up'])) as { message: string };
    assert.match(bad.message, /^--status must be one of passing/);
  });
});
