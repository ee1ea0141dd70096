/**
 * @module Test helpers: a RequestRecord (proxy/observe.ts) as the engine makes one when a request
 * ends, for the observers' unit tests (access log, Istio metrics, tracing, edge counts). A GET of
 * /pay to payments, answered 200 by one instance on the first attempt; each test overrides what
 * it looks at.
 */
import type { Endpoint } from '../../src/client/balancers/index.js';
import type { RequestRecord } from '../../src/proxy/observe.js';

/** The instance that answered: p1 at 10.0.0.7:15006, passing, no meta; fields overridable. */
export function testEndpoint(over: Partial<Endpoint> = {}): Endpoint {
  return {
    id: 'p1',
    address: '10.0.0.7',
    port: 15006,
    weight: 1,
    status: 'passing',
    zone: undefined,
    priority: 0,
    tags: [],
    meta: {},
    ...over,
  };
}

/** A finished request (see the module comment); fields overridable. */
export function requestRecord(over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    startTimeMs: 1_700_000_000_000,
    durationMs: 7,
    responseHeadMs: 5,
    method: 'GET',
    path: '/pay',
    authority: 'payments',
    headers: {},
    socket: { remoteAddress: '127.0.0.1' },
    route: 'default/payments/0',
    service: 'payments',
    cluster: 'payments',
    endpoint: testEndpoint(),
    attempts: 1,
    status: 200,
    flags: [],
    errorCode: undefined,
    requestBytes: 0,
    responseBytes: 8,
    ...over,
  };
}
