/**
 * @module The tracing options the sidecar and the gateway share (issue 21, docs/observability.md):
 * where spans go (`tracingEndpoint`, OTLP/HTTP) and the sampling ratio of requests that come
 * with no sampling decision (`tracingSampleRatio`).
 */
import { z } from 'zod';

/** An OTLP/HTTP traces URL; absent: tracing off (trace headers still pass untouched). */
export const tracingEndpointSchema = z
  .string()
  .url('must be a URL like http://127.0.0.1:4318/v1/traces')
  .refine((u) => /^https?:\/\//i.test(u), 'must be an http:// or https:// URL');

const RATIO_TEXT = /^(?:0|1|0?\.\d+|[01]\.\d*)$/;

/**
 * 0..1, as a number (a config file) or text (a flag, an env var): the share of requests without
 * a caller's sampling decision that are sampled. A caller's decision is followed (parent-based).
 */
export const tracingSampleRatioSchema = z.preprocess(
  (v) => (typeof v === 'string' && RATIO_TEXT.test(v.trim()) ? Number(v) : v),
  z
    .number({ error: 'must be a number from 0 to 1, e.g. 0.01' })
    .min(0, 'must be a number from 0 to 1, e.g. 0.01')
    .max(1, 'must be a number from 0 to 1, e.g. 0.01'),
);

/** Istio's default: 1% of the requests that come without a decision. */
export const DEFAULT_TRACING_SAMPLE_RATIO = 0.01;
