/**
 * @module The `--istio-metrics <on|off>` option, shared by the sidecar's and the gateway's
 * schemas: whether the proxy records Istio's standard request metrics (`istio_*`).
 */
import { z } from 'zod';

/** `on` (the default: every request is counted) or `off` (no `istio_*` series at all). */
export const istioMetricsSchema = z.enum(['on', 'off'], { error: 'must be on or off' });
