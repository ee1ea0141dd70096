/**
 * The example mesh as the SDK's end-to-end test (issue 6): a real agent binary and the users,
 * orders and payments examples as real processes that register themselves and call each other
 * by name. A payments instance is killed with SIGKILL under load, another stopped with SIGTERM
 * under load: no request fails either time.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { http } from '../helpers/agent.js';
import { until } from '../helpers/until.js';
import { spawnAgent, type AgentProcess } from '../helpers/cli.js';

const EXAMPLES = fileURLToPath(new URL('../../examples/mesh/', import.meta.url));

interface ServiceProcess {
  readonly child: ChildProcess;
  readonly id: string;
  readonly url: string;
  readonly exited: Promise<number | string | null>;
}

describe('the example mesh (users → orders → payments)', { timeout: 180_000 }, () => {
  let agent: AgentProcess;
  const services: ServiceProcess[] = [];

  const startService = (name: string): Promise<ServiceProcess> => {
    const child = spawn(process.execPath, ['--import', 'tsx', `${EXAMPLES}${name}.ts`], {
      env: { ...process.env, MESHWORK_REGISTRY: agent.url, PORT: '0' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | string | null>((r) =>
      child.once('exit', (code, signal) => r(code ?? signal)),
    );
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^\S+ (\S+) listening on (http:\/\/\S+)/m.exec(out);
        if (m?.[1] !== undefined && m[2] !== undefined) {
          const s = { child, id: m[1], url: m[2], exited };
          services.push(s);
          resolve(s);
        }
      });
      void exited.then((code) => reject(new Error(`${name} exited (${code}) before listening`)));
    });
  };
  const passing = async (service: string): Promise<string[]> =>
    (
      await http(agent.url, 'GET', `/api/v1/services/${service}/instances?status=passing`)
    ).body.instances.map((i: { id: string }) => i.id);
  /** Sends `count` orders (PUT, retry-safe) at `concurrency`, calling `onSent(n)` after each. */
  const load = async (
    orders: ServiceProcess,
    count: number,
    concurrency: number,
    onSent: (n: number) => Promise<void> | void,
  ) => {
    let next = 0;
    const failures: string[] = [];
    const payers = new Map<string, number>();
    const worker = async (): Promise<void> => {
      while (next < count) {
        const n = next++;
        await onSent(n);
        try {
          const res = await request(`${orders.url}/orders`, {
            method: 'PUT',
            body: JSON.stringify({ id: `o-${n}`, item: 'book', amount: n }),
          });
          const body = (await res.body.json()) as { payment?: { by: string }; error?: string };
          if (res.statusCode !== 200) failures.push(`${n}: ${res.statusCode} ${body.error}`);
          else payers.set(body.payment!.by, (payers.get(body.payment!.by) ?? 0) + 1);
        } catch (err) {
          failures.push(`${n}: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return { failures, payers };
  };

  before(async () => {
    agent = await spawnAgent(['--dev']);
    await Promise.all(['payments', 'payments', 'payments', 'orders', 'users'].map(startService));
    await until(
      async () =>
        (await passing('payments')).length === 3 && (await passing('orders')).length === 1,
      20_000,
      'every instance passing',
    );
  });
  after(async () => {
    for (const s of services) s.child.kill('SIGKILL');
    agent?.child.kill('SIGKILL');
    await Promise.all([...services.map((s) => s.exited), agent?.exited]);
  });

  it('checks out through users → orders → payments, by name', async () => {
    const users = services.find((s) => s.id.startsWith('users-'))!;
    const res = await request(`${users.url}/checkout`, {
      method: 'POST',
      body: JSON.stringify({ user: 'ada', item: 'book', amount: 12 }),
    });
    assert.equal(res.statusCode, 200);
    const body = (await res.body.json()) as {
      by: string;
      order: { by: string; payment: { charged: number; by: string } };
    };
    assert.equal(body.by, users.id);
    assert.match(body.order.by, /^orders-/);
    assert.equal(body.order.payment.charged, 12);
    assert.match(body.order.payment.by, /^payments-/);
  });

  it('loses no request when a payments instance is killed -9 under load', async (t) => {
    const orders = services.find((s) => s.id.startsWith('orders-'))!;
    const victim = services.filter((s) => s.id.startsWith('payments-'))[1]!;
    let killedAt = 0;
    const { failures, payers } = await load(orders, 400, 4, async (n) => {
      if (n === 100) {
        victim.child.kill('SIGKILL');
        killedAt = Date.now();
        await victim.exited;
      }
    });
    assert.deepEqual(failures, []);
    assert.ok((payers.get(victim.id) ?? 0) > 0, 'the victim served before it died');
    // It leaves rotation: the agent's checks find it (readiness every 1 s, TTL 5 s).
    await until(
      async () => !(await passing('payments')).includes(victim.id),
      10_000,
      'out of rotation',
    );
    t.diagnostic(
      `out of rotation ${Date.now() - killedAt} ms after the kill; payers ${JSON.stringify([...payers])}`,
    );
  });

  it('loses no request when a payments instance is stopped with SIGTERM under load', async (t) => {
    const orders = services.find((s) => s.id.startsWith('orders-'))!;
    const leaving = services.find(
      (s) =>
        s.id.startsWith('payments-') && s.child.exitCode === null && s.child.signalCode === null,
    )!;
    let code: Promise<number | string | null> | undefined;
    const { failures, payers } = await load(orders, 300, 4, (n) => {
      if (n === 100) {
        leaving.child.kill('SIGTERM');
        code = leaving.exited;
      }
    });
    assert.deepEqual(failures, []);
    assert.equal(await code, 0, 'it exits 0 after draining');
    assert.ok(!(await passing('payments')).includes(leaving.id), 'deregistered');
    const all = await http(agent.url, 'GET', '/api/v1/services/payments/instances');
    assert.ok(!all.body.instances.some((i: { id: string }) => i.id === leaving.id));
    t.diagnostic(`payers ${JSON.stringify([...payers])}`);
  });
});
