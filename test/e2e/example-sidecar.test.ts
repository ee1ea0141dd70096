/**
 * The sidecar example (issue 19) end to end: examples/sidecar/run.ts's `startExample` starts the
 * built agent, the plain HTTP apps users, orders and payments v1/v2 under real `meshwork sidecar`
 * processes, and applies examples/sidecar/canary.yaml. A request goes users -> orders -> payments
 * through the sidecars; `x-canary: true` reaches v2; without it the split is 90/10; stopping it
 * ends every process with exit code 0.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  getJson,
  paymentsVersion,
  startExample,
  type RunningExample,
} from '../../examples/sidecar/run.js';

describe(
  'the sidecar example (users -> orders -> payments behind sidecars)',
  { timeout: 120_000 },
  () => {
    let example: RunningExample | undefined;
    let output = '';

    before(async () => {
      example = await startExample({ log: (name, text) => (output += `[${name}] ${text}`) });
    });
    after(async () => {
      await example?.stop();
    });

    it('runs apps that import nothing but node: modules and each other', () => {
      for (const app of ['users', 'orders', 'payments', 'http-app']) {
        const source = readFileSync(
          new URL(`../../examples/sidecar/${app}.ts`, import.meta.url),
          'utf8',
        );
        const imports = [...source.matchAll(/from '([^']+)'/g)].map((m) => m[1] ?? '');
        assert.ok(imports.length > 0, app);
        for (const from of imports) assert.match(from, /^(node:|\.\/)/, `${app} imports ${from}`);
      }
    });

    it('answers a checkout through the chain users -> orders -> payments', async () => {
      const answer = (await getJson(`${example?.users}/checkout`)) as {
        service: string;
        order: { service: string; placed: boolean; payment: { service: string } };
      };
      assert.equal(answer.service, 'users');
      assert.equal(answer.order.service, 'orders');
      assert.equal(answer.order.placed, true);
      assert.equal(answer.order.payment.service, 'payments');
      // The apps really are behind their sidecars: they printed where they listen, on their own ports.
      assert.match(output, /\[users\] users listening on /);
      assert.match(output, /\[payments-v2\] payments v2 listening on /);
    });

    it('sends every request with x-canary: true to payments v2', async () => {
      for (let i = 0; i < 20; i++) {
        const answer = await getJson(`${example?.users}/checkout`, { 'x-canary': 'true' });
        assert.equal(paymentsVersion(answer), 'v2', `request ${i}`);
      }
    });

    it('splits requests without the header 90/10 between v1 and v2', async () => {
      const counts = { v1: 0, v2: 0 };
      for (let i = 0; i < 200; i++) {
        const version = paymentsVersion(await getJson(`${example?.users}/checkout`));
        assert.ok(version === 'v1' || version === 'v2', `request ${i}: ${String(version)}`);
        counts[version] += 1;
      }
      // Smooth weighted round robin is deterministic: 180/20, off by a request or two at most
      // (the start-up checks sent a few requests on the same route).
      assert.ok(counts.v1 >= 176 && counts.v1 <= 184, JSON.stringify(counts));
      assert.equal(counts.v1 + counts.v2, 200);
    });

    it('answers the same from the users app on its own port', async () => {
      const answer = await getJson(`${example?.usersApp}/checkout`, { 'x-canary': 'true' });
      assert.equal(paymentsVersion(answer), 'v2');
    });

    it('stops every sidecar, app and the agent with exit code 0', async () => {
      const running = example;
      example = undefined;
      assert.ok(running !== undefined);
      const codes = await running.stop();
      assert.deepEqual(codes, {
        'payments-v1': 0,
        'payments-v2': 0,
        orders: 0,
        users: 0,
        agent: 0,
      });
    });
  },
);
