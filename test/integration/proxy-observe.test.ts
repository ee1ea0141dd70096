// The proxy engine's request records (issue 21, proxy/observe.ts): what observers of a real pair
// of in-process sidecars (client -> outbound of A -> inbound of B -> app) are told of each
// request: the route, service, instance, status, bytes, flags and the observers' own state.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { silentLogger } from '../../src/core/logger.js';
import type { InstanceDto } from '../../src/protocol/api-types.js';
import type { FilterExchange } from '../../src/proxy/filter.js';
import type { RequestObserver, RequestRecord } from '../../src/proxy/observe.js';
import {
  startSidecarProxy,
  type RunningSidecarProxy,
  type SidecarProxyOptions,
} from '../../src/sidecar/sidecar-proxy.js';
import { fakeInstance, fakeResource } from '../../src/testing/fake-mesh-catalog.js';
import { call, startUpstream, type Upstream } from '../helpers/gateway.js';
import { compileSidecarSnapshot } from '../helpers/mesh-snapshot.js';
import { until } from '../helpers/until.js';
import { SIDECAR_PROXY_BASE } from '../helpers/sidecar.js';

const BASE: SidecarProxyOptions = SIDECAR_PROXY_BASE;

/** Keeps every record, and sets a header in `start` (what a tracer does). */
class Recorder implements RequestObserver {
  readonly records: { record: RequestRecord; state: unknown }[] = [];
  readonly #name: string;
  #n = 0;
  constructor(name: string) {
    this.#name = name;
  }
  start(x: FilterExchange): unknown {
    const n = ++this.#n;
    x.setRequestHeader('x-observed', `${this.#name}-${n}`);
    return n;
  }
  end(record: RequestRecord, state: unknown): void {
    this.records.push({ record, state });
  }
}

describe('proxy request records (observers)', () => {
  let app: Upstream;
  let a: RunningSidecarProxy;
  let b: RunningSidecarProxy;
  const outbound = new Recorder('out');
  const inbound = new Recorder('in');
  /** An observer that throws: the requests must not notice. */
  const throwing: RequestObserver = {
    start: () => {
      throw new Error('observer start');
    },
    end: () => {
      throw new Error('observer end');
    },
  };

  before(async () => {
    app = await startUpstream('payments');
    b = await startSidecarProxy({ ...BASE, service: 'payments', appPort: app.port }, silentLogger, {
      inboundObservers: [inbound],
    });
    a = await startSidecarProxy(BASE, silentLogger, { outboundObservers: [throwing, outbound] });
    const instances: InstanceDto[] = [
      fakeInstance('p1', 'payments', {
        address: '127.0.0.1',
        port: Number(new URL(b.inboundUrl).port),
      }),
      fakeInstance('o1', 'orders', { address: '127.0.0.1', port: 1 }),
      // An instance whose port nothing listens on: every attempt is refused.
      fakeInstance('d1', 'dead', { address: '127.0.0.1', port: 1 }),
    ];
    const retryTwice = fakeResource('VirtualService', 'dead', {
      hosts: ['dead'],
      http: [{ route: [{ destination: { host: 'dead' } }], retries: { attempts: 2 } }],
    });
    a.applySnapshot(compileSidecarSnapshot('orders', instances, [retryTwice]));
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    await app.close();
  });
  beforeEach(() => {
    outbound.records.length = 0;
    inbound.records.length = 0;
  });

  const last = (r: Recorder): { record: RequestRecord; state: unknown } => {
    const l = r.records.at(-1);
    assert.ok(l !== undefined, 'a record');
    return l;
  };

  it('records a proxied request on both sides: route, service, instance, status, bytes, state', async () => {
    const res = await call(a.outboundUrl, '/pay?x=1', {
      method: 'POST',
      headers: { host: 'payments', 'content-type': 'text/plain' },
      body: 'hello',
    });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'payments');
    await until(
      () => outbound.records.length === 1 && inbound.records.length === 1,
      2_000,
      'both records',
    );
    const out = last(outbound);
    assert.equal(out.record.method, 'POST');
    assert.equal(out.record.path, '/pay?x=1');
    assert.equal(out.record.authority, 'payments');
    assert.equal(out.record.service, 'payments');
    assert.equal(out.record.status, 200);
    assert.deepEqual(out.record.flags, []);
    assert.equal(out.record.errorCode, undefined);
    assert.equal(out.record.attempts, 1);
    assert.equal(out.record.endpoint?.port, Number(new URL(b.inboundUrl).port));
    assert.equal(out.record.requestBytes, 5);
    assert.equal(out.record.responseBytes, 'payments'.length);
    assert.ok(out.record.durationMs > 0);
    assert.ok(
      out.record.responseHeadMs !== undefined && out.record.responseHeadMs <= out.record.durationMs,
    );
    assert.ok(Math.abs(out.record.startTimeMs - Date.now()) < 60_000);
    // The observer's start ran before the request went on: its header reached the app, and its
    // state came back to its end.
    assert.equal(out.state, 1);
    const inb = last(inbound);
    assert.equal(inb.state, 1);
    assert.equal(app.seen.at(-1)?.headers['x-observed'], 'in-1', "the inbound side's start ran");
    assert.equal(inb.record.service, 'payments');
    assert.equal(inb.record.status, 200);
    assert.equal(inb.record.endpoint?.port, app.port);
    assert.equal(inb.record.headers['x-observed'], 'out-1', "the outbound side's start ran");
  });

  it('flags a request refused as malformed (DPE) with its error code, answered locally', async () => {
    const res = await call(a.outboundUrl, '/', { headers: { host: 'bad host!' } });
    assert.equal(res.status, 400);
    const { record, state } = last(outbound);
    assert.equal(record.status, 400);
    assert.deepEqual(record.flags, ['DPE']);
    assert.equal(record.errorCode, 'MESHWORK_ERR_PROXY_BAD_REQUEST');
    assert.equal(record.route, undefined);
    assert.equal(record.service, undefined);
    assert.equal(record.attempts, 0);
    assert.equal(record.responseBytes, Buffer.byteLength(res.text));
    assert.equal(state, undefined, 'start does not run without a route');
  });

  it('flags retries exhausted on a refused instance (UF, URX) and counts the attempts', async () => {
    const res = await call(a.outboundUrl, '/', { headers: { host: 'dead' } });
    assert.ok(res.status === 502 || res.status === 503, String(res.status));
    const { record } = last(outbound);
    assert.equal(record.service, 'dead');
    assert.equal(record.status, res.status);
    assert.ok(record.attempts >= 2, `attempts ${record.attempts}`);
    assert.ok(record.flags.includes('URX'), record.flags.join(','));
    assert.ok(
      record.flags.includes('UF') || record.flags.includes('UH'),
      `flags ${record.flags.join(',')}`,
    );
  });
});
