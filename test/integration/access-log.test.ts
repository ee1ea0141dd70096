// Access logs (issue 21): a real pair of in-process sidecar proxies (client -> outbound of
// orders -> inbound of payments -> app) writing JSON lines through the asynchronous writer to a
// file in a temp dir; the lines read back as the requests went.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/core/logger.js';
import { createAccessLogObserver, type AccessLogEntry } from '../../src/proxy/access-log.js';
import { startSidecarProxy, type RunningSidecarProxy } from '../../src/sidecar/sidecar-proxy.js';
import {
  createAccessLogWriter,
  type AccessLogWriter,
} from '../../src/telemetry/access-log-writer.js';
import { call, startUpstream, type Upstream } from '../helpers/gateway.js';
import { compileSidecarSnapshot } from '../helpers/mesh-snapshot.js';
import { instanceAtSidecar, SIDECAR_PROXY_BASE } from '../helpers/sidecar.js';
import { until } from '../helpers/until.js';

describe('access logs from a sidecar pair', () => {
  let dir: string;
  let app: Upstream;
  let a: RunningSidecarProxy;
  let b: RunningSidecarProxy;
  let aLog: AccessLogWriter;
  let bLog: AccessLogWriter;
  const lines = (file: string): AccessLogEntry[] => {
    let text = '';
    try {
      text = readFileSync(join(dir, file), 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as AccessLogEntry);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshwork-access-log-'));
    app = await startUpstream('payments');
    aLog = createAccessLogWriter(join(dir, 'orders', 'access.log'));
    bLog = createAccessLogWriter(join(dir, 'payments.log'));
    b = await startSidecarProxy(
      { ...SIDECAR_PROXY_BASE, service: 'payments', appPort: app.port },
      silentLogger,
      {
        inboundObservers: [
          createAccessLogObserver({ sink: bLog, reporter: 'destination', sampleRate: 1 }),
        ],
      },
    );
    a = await startSidecarProxy(SIDECAR_PROXY_BASE, silentLogger, {
      outboundObservers: [
        createAccessLogObserver({ sink: aLog, reporter: 'source', sampleRate: 1 }),
      ],
    });
    a.applySnapshot(compileSidecarSnapshot('orders', [instanceAtSidecar('p1', 'payments', b)], []));
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    await Promise.all([aLog.close(), bLog.close()]);
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes one line per request on each side with trace id, route, upstream and bytes', async () => {
    const trace = '0af7651916cd43dd8448eb211c80319c';
    const res = await call(a.outboundUrl, '/pay?id=7', {
      method: 'POST',
      headers: {
        host: 'payments',
        traceparent: `00-${trace}-b7ad6b7169203331-01`,
        'user-agent': 'access-log-test',
        'x-request-id': 'req-42',
        'content-type': 'text/plain',
      },
      body: 'hello',
    });
    assert.equal(res.status, 200);
    await until(
      () => lines('orders/access.log').length === 1 && lines('payments.log').length === 1,
      5_000,
      'a line in each file',
    );
    const [out] = lines('orders/access.log') as [AccessLogEntry];
    assert.equal(out.reporter, 'source');
    assert.equal(out.trace_id, trace);
    assert.equal(out.method, 'POST');
    assert.equal(out.path, '/pay?id=7');
    assert.equal(out.authority, 'payments');
    assert.equal(out.destination_service, 'payments');
    assert.equal(out.upstream_host, `127.0.0.1:${new URL(b.inboundUrl).port}`);
    assert.equal(out.response_code, 200);
    assert.equal(out.response_flags, '-');
    assert.equal(out.upstream_attempts, 1);
    assert.equal(out.bytes_received, 5);
    assert.equal(out.bytes_sent, 'payments'.length);
    assert.equal(out.user_agent, 'access-log-test');
    assert.equal(out.request_id, 'req-42');
    assert.equal(out.downstream_remote_address, '127.0.0.1');
    assert.ok(out.duration > 0 && out.response_duration !== null);
    assert.ok(Math.abs(Date.parse(out.start_time) - Date.now()) < 60_000);
    const [inb] = lines('payments.log') as [AccessLogEntry];
    assert.equal(inb.reporter, 'destination');
    assert.equal(inb.trace_id, trace);
    assert.equal(inb.upstream_host, `127.0.0.1:${app.port}`);
    assert.equal(inb.request_id, 'req-42');
  });

  it('logs a request refused before routing with its flag and error code', async () => {
    const before = lines('orders/access.log').length;
    const res = await call(a.outboundUrl, '/', { headers: { host: 'bad host!' } });
    assert.equal(res.status, 400);
    await until(() => lines('orders/access.log').length === before + 1, 5_000, 'the 400 logged');
    const e = lines('orders/access.log').at(-1) as AccessLogEntry;
    assert.equal(e.response_code, 400);
    assert.equal(e.response_flags, 'DPE');
    assert.equal(e.response_code_details, 'MESHWORK_ERR_PROXY_BAD_REQUEST');
    assert.equal(e.upstream_host, null);
  });
});
