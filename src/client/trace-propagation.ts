/**
 * @module Trace context on the SDK's calls (issue 21): `client.fetch` sends the trace context of
 * the app's active OpenTelemetry span (`traceparent`, and whatever else the app's registered
 * propagator writes), so an app traced with OpenTelemetry keeps its traces across Meshwork
 * calls without wiring. @opentelemetry/api is the package made for libraries to do this: with no
 * SDK registered its calls are no-ops, and an app's SDK, whatever copy of the API it loaded,
 * answers them (the API keeps its registrations on a global shared by every 1.x copy).
 */
import { channel } from 'node:diagnostics_channel';
import { context, propagation } from '@opentelemetry/api';

// OpenTelemetry's undici instrumentation listens here and injects its own client span's context
// into every undici request, ours included: then it is the better parent, and a second
// traceparent beside it would make the header a list that no receiver accepts.
const undiciRequestCreate = channel('undici:request:create');

/**
 * Adds the active context's trace headers to `headers` (lowercase names), unless the caller gave
 * a `traceparent` itself (it wins) or an undici instrumentation will add them.
 */
export function injectTraceContext(headers: Record<string, string>): void {
  if (headers.traceparent !== undefined || undiciRequestCreate.hasSubscribers) return;
  propagation.inject(context.active(), headers);
}
