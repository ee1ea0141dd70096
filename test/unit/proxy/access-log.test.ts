// Access log entries from request records (issue 21): the fields, the trace id parser (W3C
// traceparent, B3) and the sampling decision.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  accessLogEntry,
  createAccessLogObserver,
  isoTime,
  traceIdOf,
  type AccessLogEntry,
} from '../../../src/proxy/access-log.js';
import type { RequestRecord } from '../../../src/proxy/observe.js';
import { setPeerIdentity } from '../../../src/proxy/peer-identity.js';
import { requestRecord, testEndpoint } from '../../helpers/request-record.js';
import { seededRandom } from '../../helpers/seeded-random.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE}-00f067aa0ba902b7-01`;

/** A POST with a traceparent, retried once, to a v2 subset; `over` on top. */
const record = (over: Partial<RequestRecord> = {}): RequestRecord =>
  requestRecord({
    startTimeMs: Date.UTC(2026, 11, 6, 21, 0, 0, 123),
    durationMs: 7.123456,
    responseHeadMs: 5.5,
    method: 'POST',
    path: '/pay?x=1',
    headers: { traceparent: TRACEPARENT, 'user-agent': 'curl/8', 'x-request-id': 'r-1' },
    cluster: 'payments|v2',
    attempts: 2,
    requestBytes: 5,
    ...over,
  });

describe('access log entries', () => {
  it('maps a record to the Envoy/Istio field names', () => {
    const socket = { remoteAddress: '10.0.0.9' };
    setPeerIdentity(socket, { mtls: true, spiffeId: 'spiffe://cluster.local/ns/default/sa/web' });
    assert.deepEqual(accessLogEntry(record({ socket }), 'destination'), {
      start_time: '2026-12-06T21:00:00.123Z',
      trace_id: TRACE,
      reporter: 'destination',
      downstream_remote_address: '10.0.0.9',
      source_principal: 'spiffe://cluster.local/ns/default/sa/web',
      destination_service: 'payments',
      route_name: 'default/payments/0',
      upstream_cluster: 'payments|v2',
      upstream_host: '10.0.0.7:15006',
      method: 'POST',
      path: '/pay?x=1',
      authority: 'payments',
      response_code: 200,
      response_flags: '-',
      response_code_details: null,
      upstream_attempts: 2,
      duration: 7.123,
      response_duration: 5.5,
      bytes_received: 5,
      bytes_sent: 8,
      user_agent: 'curl/8',
      request_id: 'r-1',
    } satisfies AccessLogEntry);
  });

  it('writes null for what a local reply lacks, and the flags in Envoy order', () => {
    const e = accessLogEntry(
      record({
        headers: {},
        route: undefined,
        service: undefined,
        cluster: undefined,
        endpoint: undefined,
        responseHeadMs: undefined,
        status: 400,
        flags: ['URX', 'UF'],
        errorCode: 'MESHWORK_ERR_PROXY_BAD_REQUEST',
      }),
      'source',
    );
    assert.equal(e.trace_id, null);
    assert.equal(e.upstream_host, null);
    assert.equal(e.route_name, null);
    assert.equal(e.response_duration, null);
    assert.equal(e.response_flags, 'UF,URX');
    assert.equal(e.response_code_details, 'MESHWORK_ERR_PROXY_BAD_REQUEST');
    assert.equal(e.source_principal, null);
    assert.equal(e.user_agent, null);
  });

  it('brackets an IPv6 upstream host', () => {
    const e = accessLogEntry(record({ endpoint: testEndpoint({ address: '::1' }) }), 'source');
    assert.equal(e.upstream_host, '[::1]:15006');
  });

  it('logs every request at rate 1, none through a 0 draw, and about the rate otherwise', () => {
    const all: AccessLogEntry[] = [];
    const every = createAccessLogObserver({
      sink: { write: (e) => all.push(e) },
      reporter: 'source',
      sampleRate: 1,
      random: () => assert.fail('rate 1 draws nothing'),
    });
    for (let i = 0; i < 100; i++) every.end(record(), undefined);
    assert.equal(all.length, 100);
    let n = 0;
    const quarter = createAccessLogObserver({
      sink: { write: () => n++ },
      reporter: 'source',
      sampleRate: 0.25,
      random: seededRandom(21),
    });
    const total = 20_000;
    for (let i = 0; i < total; i++) quarter.end(record(), undefined);
    // Binomial(20000, 0.25): sigma ~61; 6 sigma either way.
    assert.ok(Math.abs(n - total * 0.25) < 6 * Math.sqrt(total * 0.25 * 0.75), `${n} logged`);
  });

  it('always logs a failed request (5xx, no response, any flag), whatever the rate', () => {
    const logged: AccessLogEntry[] = [];
    const none = createAccessLogObserver({
      sink: { write: (e) => logged.push(e) },
      reporter: 'source',
      sampleRate: 0,
      random: () => 0.5,
    });
    none.end(record({ status: 200 }), undefined);
    none.end(record({ status: 404 }), undefined);
    none.end(record({ status: 503 }), undefined);
    none.end(record({ status: 0, flags: ['DC'] }), undefined);
    none.end(record({ status: 400, flags: ['DPE'] }), undefined);
    none.end(record({ status: 200, flags: ['DI'] }), undefined);
    assert.deepEqual(
      logged.map((e) => [e.response_code, e.response_flags]),
      [
        [503, '-'],
        [0, 'DC'],
        [400, 'DPE'],
        [200, 'DI'],
      ],
    );
  });
});

describe('start_time', () => {
  it('is the whole ms of a sub-ms start, as toISOString gives it, on the fast path', () => {
    const whole = Date.UTC(2026, 11, 6, 21, 0, 0, 123);
    for (const fraction of [0, 0.001, 0.5, 0.999]) {
      const e = accessLogEntry(record({ startTimeMs: whole + fraction }), 'source');
      assert.equal(e.start_time, '2026-12-06T21:00:00.123Z');
    }
  });
});

describe('isoTime', () => {
  it('formats as toISOString does, for any time, in any order (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.integer({ min: 0, max: 253_402_300_799_999 }),
            fc.integer({ min: 1_790_000_000_000, max: 1_790_000_003_000 }),
            fc.double({ min: -1e13, max: 3e14, noNaN: true }),
          ),
          { maxLength: 20 },
        ),
        (times) => {
          for (const ms of times) assert.equal(isoTime(ms), new Date(ms).toISOString());
        },
      ),
      { numRuns: 500, seed: 21 },
    );
  });
});

describe('traceIdOf', () => {
  const hex = (n: number) =>
    fc
      .array(fc.constantFrom(...'0123456789abcdef'), { minLength: n, maxLength: n })
      .map((a) => a.join(''));
  const nonZero = (n: number) => hex(n).filter((s) => !/^0+$/.test(s));

  it('reads the trace id of any valid version-00 traceparent', () => {
    fc.assert(
      fc.property(nonZero(32), nonZero(16), hex(2), (trace, parent, flags) => {
        assert.equal(traceIdOf(`00-${trace}-${parent}-${flags}`, undefined), trace);
      }),
    );
  });

  it('reads a later version with more fields, and refuses ff, zeros, upper case and bad shapes', () => {
    assert.equal(traceIdOf(`01-${TRACE}-00f067aa0ba902b7-01-extra`, undefined), TRACE);
    assert.equal(traceIdOf(`ff-${TRACE}-00f067aa0ba902b7-01`, undefined), undefined);
    assert.equal(traceIdOf(`00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, undefined), undefined);
    assert.equal(traceIdOf(`00-${TRACE}-${'0'.repeat(16)}-01`, undefined), undefined);
    assert.equal(traceIdOf(`00-${TRACE.toUpperCase()}-00f067aa0ba902b7-01`, undefined), undefined);
    assert.equal(traceIdOf(`00-${TRACE}-00f067aa0ba902b7-01-x`, undefined), undefined);
    assert.equal(traceIdOf(`00_${TRACE}-00f067aa0ba902b7-01`, undefined), undefined);
    assert.equal(traceIdOf([TRACEPARENT], undefined), undefined);
  });

  it('follows W3C on the version: fe is a later version, FF and Fe are not hex it reads', () => {
    assert.equal(traceIdOf(`fe-${TRACE}-00f067aa0ba902b7-01`, undefined), TRACE);
    assert.equal(traceIdOf(`FF-${TRACE}-00f067aa0ba902b7-01`, undefined), undefined);
    assert.equal(traceIdOf(`Fe-${TRACE}-00f067aa0ba902b7-01`, undefined), undefined);
    assert.equal(traceIdOf(`00-${TRACE}-00f067aa0ba902b7-0F`, undefined), undefined);
  });

  it('falls back to a B3 trace id of 16 or 32 hex digits, in the width it came', () => {
    assert.equal(traceIdOf(undefined, TRACE), TRACE);
    assert.equal(traceIdOf('garbage', 'a3ce929d0e0e4736'), 'a3ce929d0e0e4736');
    assert.equal(traceIdOf(undefined, 'a3ce929d0e0e473'), undefined);
    assert.equal(traceIdOf(undefined, '0'.repeat(16)), undefined);
    assert.equal(traceIdOf(undefined, '0'.repeat(32)), undefined);
    assert.equal(traceIdOf(undefined, 'A3CE929D0E0E4736'), undefined, 'lowercase only');
    assert.equal(traceIdOf(undefined, ['a3ce929d0e0e4736']), undefined, 'the header sent twice');
    assert.equal(traceIdOf(TRACEPARENT, 'a3ce929d0e0e4736'), TRACE, 'traceparent first');
  });

  it('answers undefined or a 16/32-digit lowercase hex id, never throws, on any input', () => {
    fc.assert(
      fc.property(
        fc.option(
          fc.oneof(fc.string({ maxLength: 80 }), fc.string({ minLength: 55, maxLength: 60 })),
        ),
        fc.option(fc.string({ maxLength: 40 })),
        (tp, b3) => {
          const id = traceIdOf(tp ?? undefined, b3 ?? undefined);
          assert.ok(id === undefined || /^([0-9a-f]{16}|[0-9a-f]{32})$/.test(id), String(id));
        },
      ),
    );
  });
});
