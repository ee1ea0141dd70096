import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ClusterLimits,
  connectionPoolProblems,
} from '../../../../src/proxy/filters/connection-pool/cluster-limits.js';

describe('cluster limits', () => {
  it('admits maxConnections + maxPendingRequests in flight, then overflows until one is released', () => {
    const l = new ClusterLimits({ maxConnections: 2, maxPendingRequests: 1 });
    assert.equal(l.capacity, 3);
    assert.ok(l.admit() && l.admit() && l.admit());
    assert.equal(l.admit(), false);
    const err = l.overflow('web');
    assert.equal(err.code, 'MESHWORK_ERR_PROXY_OVERFLOW');
    assert.deepEqual(err.details, {
      service: 'web',
      limit: 'maxConnections + maxPendingRequests',
      value: 3,
    });
    l.release();
    assert.equal(l.admit(), true);
  });

  it('takes the smaller of maxRequests and the wire limit; pending alone bounds nothing', () => {
    assert.equal(
      new ClusterLimits({ maxRequests: 4, maxConnections: 5, maxPendingRequests: 5 }).capacity,
      4,
    );
    assert.equal(new ClusterLimits({ maxPendingRequests: 5 }).capacity, Infinity);
    assert.equal(new ClusterLimits({ maxPendingRequests: 5 }).bounded, false);
  });

  it('caps retries in flight at maxRetries (0: none)', () => {
    const none = new ClusterLimits({ maxRetries: 0 });
    assert.equal(none.tryRetry(), false);
    const one = new ClusterLimits({ maxRetries: 1 });
    assert.equal(one.tryRetry(), true);
    assert.equal(one.tryRetry(), false);
    one.releaseRetry();
    assert.equal(one.tryRetry(), true);
  });

  it('names each bad field', () => {
    assert.deepEqual(
      connectionPoolProblems({ maxConnections: 0, maxRetries: -1, maxRequests: 1.5 }, 'p'),
      [
        'p.maxConnections: must be a whole number >= 1',
        'p.maxRequests: must be a whole number >= 1',
        'p.maxRetries: must be a whole number >= 0',
      ],
    );
  });
});
