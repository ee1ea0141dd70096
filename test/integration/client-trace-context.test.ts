/**
 * @module client.fetch carries the app's trace context (issue 21): against a real agent and a
 * real upstream, a call made inside an OpenTelemetry context (the app registered the W3C
 * propagator and a context manager, as an app's OpenTelemetry SDK does) sends that context's
 * `traceparent`; a `traceparent` the app gives wins; without a registration nothing is added;
 * and with an undici instrumentation listening, the client leaves injection to it.
 */
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  ROOT_CONTEXT,
  TraceFlags,
  context,
  propagation,
  trace,
  type Context,
  type ContextManager,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { createMeshworkClient, type MeshworkClient } from '../../src/client/mesh-client.js';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';

/** A context manager on AsyncLocalStorage (what @opentelemetry/context-async-hooks provides). */
class StorageContextManager implements ContextManager {
  readonly #storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#storage.run(ctx, () => fn.call(thisArg, ...args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#storage.disable();
    return this;
  }
}

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const inSpan = (): Context =>
  trace.setSpanContext(ROOT_CONTEXT, {
    traceId: TRACE,
    spanId: SPAN,
    traceFlags: TraceFlags.SAMPLED,
    isRemote: false,
  });

describe('client.fetch and the trace context', () => {
  let agent: TestAgent;
  let client: MeshworkClient;
  let server: Server;
  const seen: IncomingHttpHeaders[] = [];

  before(async () => {
    agent = await startTestAgent();
    server = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    client = createMeshworkClient({ registry: agent.url });
    const port = (server.address() as { port: number }).port;
    await client.registry.register({ service: 'traced', id: 't1', address: '127.0.0.1', port });
  });
  after(async () => {
    await client.close();
    server.close();
    await agent.close();
  });
  afterEach(() => {
    propagation.disable();
    context.disable();
  });

  /** One call to the `traced` service inside `ctx`; the headers the upstream got. */
  const call = async (ctx: Context, headers?: Record<string, string>) => {
    const res = await context.with(ctx, () =>
      client.fetch('http://traced/x', headers === undefined ? {} : { headers }),
    );
    assert.equal(res.status, 200);
    await res.text();
    return seen.at(-1) as IncomingHttpHeaders;
  };

  it('adds nothing when the app registered no OpenTelemetry SDK', async () => {
    const h = await call(inSpan());
    assert.equal(h.traceparent, undefined);
  });

  it("sends the active span's context once the app registered a propagator", async () => {
    context.setGlobalContextManager(new StorageContextManager());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    const h = await call(inSpan());
    assert.equal(h.traceparent, `00-${TRACE}-${SPAN}-01`);
    // Outside any span: nothing to send.
    assert.equal((await call(ROOT_CONTEXT)).traceparent, undefined);
    // A body that is not replayable goes through undici's fetch: it is carried there too.
    const res = await context.with(inSpan(), () =>
      client.fetch('http://traced/stream', {
        method: 'POST',
        body: new Blob(['x']),
      }),
    );
    await res.text();
    assert.equal(seen.at(-1)?.traceparent, `00-${TRACE}-${SPAN}-01`);
  });

  it('keeps a traceparent the app gives', async () => {
    context.setGlobalContextManager(new StorageContextManager());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    const given = `00-${TRACE}-${'1'.repeat(16)}-00`;
    assert.equal((await call(inSpan(), { Traceparent: given })).traceparent, given);
  });

  it("leaves injection to OpenTelemetry's undici instrumentation when one listens", async () => {
    context.setGlobalContextManager(new StorageContextManager());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    const listener = (): void => undefined;
    subscribe('undici:request:create', listener);
    try {
      assert.equal((await call(inSpan())).traceparent, undefined);
    } finally {
      unsubscribe('undici:request:create', listener);
    }
  });
});
