/** @module payments: charges an amount once per charge id (PUT: safe to retry). */
import { runService } from './service.js';

await runService('payments', {
  'PUT /charges': async (req, body, ctx) => {
    const { id, amount } = JSON.parse(body || '{}') as { id?: string; amount?: number };
    return { json: { charge: id, charged: amount ?? 0, by: ctx.id } };
  },
});
