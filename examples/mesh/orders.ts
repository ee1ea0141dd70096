/** @module orders: places an order, paying through the payments service, called by name. */
import { runService } from './service.js';

await runService('orders', {
  // PUT with the order id in the body: placing the same order twice is one order, so the SDK
  // may retry it on another instance (it never retries a POST that may have been sent).
  'PUT /orders': async (_req, body, ctx) => {
    const order = JSON.parse(body || '{}') as { id?: string; item?: string; amount?: number };
    const res = await ctx.client.fetch('http://payments/charges', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: `charge-${order.id}`, amount: order.amount ?? 0 }),
    });
    if (!res.ok) return { status: 502, json: { error: `payments answered ${res.status}` } };
    return { json: { order: order.id, item: order.item, payment: await res.json(), by: ctx.id } };
  },
});
