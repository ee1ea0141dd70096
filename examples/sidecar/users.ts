/** @module users, a plain HTTP app: `GET /checkout` places an order through orders (`Host: orders`). */
import { call, canary, serve } from './http-app.js';

serve('users', async (req) => {
  const order = await call('orders', '/order', canary(req));
  return {
    status: order.status === 200 ? 200 : 502,
    body: { service: 'users', user: 'ada', order: order.body },
  };
});
