/** @module users: a user's checkout, which places an order through the orders service. */
import { randomUUID } from 'node:crypto';
import { runService } from './service.js';

await runService('users', {
  'POST /checkout': async (_req, body, ctx) => {
    const { user, item, amount } = JSON.parse(body || '{}') as Record<string, unknown>;
    const res = await ctx.client.fetch('http://orders/orders', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: randomUUID(), item, amount }),
    });
    if (!res.ok) return { status: 502, json: { error: `orders answered ${res.status}` } };
    return { json: { user, order: await res.json(), by: ctx.id } };
  },
});
