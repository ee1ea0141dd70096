/** @module orders, a plain HTTP app: `GET /order` charges through payments (`Host: payments`). */
import { call, canary, serve } from './http-app.js';

serve('orders', async (req) => {
  const payment = await call('payments', '/charge', canary(req));
  return {
    status: payment.status === 200 ? 200 : 502,
    body: { service: 'orders', placed: payment.status === 200, payment: payment.body },
  };
});
