/**
 * @module payments, a plain HTTP app: `GET /charge` answers which version charged. `VERSION`
 * (v1 or v2) changes the answer; the sidecar's `--meta version=...` labels the instance.
 */
import { serve } from './http-app.js';

const version = process.env['VERSION'] ?? 'v1';
serve(`payments ${version}`, async () => ({
  status: 200,
  body: { service: 'payments', version, charged: true },
}));
