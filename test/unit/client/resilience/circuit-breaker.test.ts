/** OutlierDetector: closed -> open -> half-open -> closed/open, growing ejections, maxEjectedPercent. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errors, isMeshError, ERROR_CODES } from '../../../../src/core/errors.js';
import {
  OutlierDetector,
  type CircuitBreakerOptions,
  type CircuitState,
} from '../../../../src/client/resilience/circuit-breaker.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';

function detector(options: Partial<CircuitBreakerOptions> = {}, ids = ['a', 'b', 'c', 'd']) {
  const clock = new FakeClock();
  const d = new OutlierDetector(
    { consecutiveFailures: 3, baseEjectionMs: 1000, maxEjectionMs: 2500, ...options },
    { clock },
  );
  d.setEndpoints(ids);
  const changes: string[] = [];
  d.onChange((id, state) => changes.push(`${id}:${state}`));
  const fail = (id: string, n: number): void => {
    for (let i = 0; i < n; i++) d.report(id, false);
  };
  return { d, clock, changes, fail };
}

describe('OutlierDetector', () => {
  it('ejects after consecutive failures only; a success resets the count', () => {
    const { d, fail } = detector();
    fail('a', 2);
    d.report('a', true);
    fail('a', 2);
    assert.equal(d.state('a'), 'closed');
    assert.equal(d.allow('a'), true);
    d.report('a', false);
    assert.equal(d.state('a'), 'open');
    assert.equal(d.allow('a'), false);
    assert.deepEqual([...d.ejected], ['a']);
    assert.deepEqual([...d.unavailable], ['a']);
  });

  it('goes half-open when the ejection ends, admits the probes, and closes when they succeed', () => {
    const { d, clock, changes, fail } = detector({ halfOpenProbes: 2 });
    const ejected = d.ejected;
    fail('a', 3);
    clock.advance(999);
    assert.equal(d.state('a'), 'open');
    clock.advance(1);
    assert.equal(d.state('a'), 'half-open');
    assert.equal(d.ejected.size, 0, 'back in the balancer for probes');
    assert.equal(d.ejected, ejected, 'the same Set instance, mutated in place');
    assert.equal(d.allow('a'), true);
    assert.ok(!d.unavailable.has('a'));
    assert.equal(d.allow('a'), true);
    assert.ok(d.unavailable.has('a'), 'every probe slot taken');
    assert.equal(d.allow('a'), false);
    d.report('a', true);
    assert.equal(d.state('a'), 'half-open');
    d.report('a', true);
    assert.equal(d.state('a'), 'closed');
    assert.equal(d.allow('a'), true);
    assert.equal(d.unavailable.size, 0);
    assert.deepEqual(changes, ['a:open', 'a:half-open', 'a:closed']);
  });

  it('re-opens on a failed probe for longer each time (base * n, capped at maxEjectionMs)', () => {
    const { d, clock, changes, fail } = detector();
    fail('a', 3);
    const openFor: number[] = [];
    for (let round = 0; round < 4; round++) {
      let waited = 0;
      while (d.state('a') === 'open') {
        clock.advance(100);
        waited += 100;
      }
      openFor.push(waited);
      assert.equal(d.allow('a'), true);
      d.report('a', false);
    }
    assert.deepEqual(openFor, [1000, 2000, 2500, 2500]);
    assert.deepEqual(changes.slice(0, 3), ['a:open', 'a:half-open', 'a:open']);
  });

  it('lets the ejection multiplier decay while the endpoint stays healthy', () => {
    const { d, clock, fail } = detector();
    fail('a', 3);
    clock.advance(1000);
    d.allow('a');
    d.report('a', false); // second ejection: 2000 ms
    clock.advance(2000);
    d.allow('a');
    d.report('a', true);
    assert.equal(d.state('a'), 'closed');
    clock.advance(1000); // one base period healthy: the multiplier drops from 2 to 1
    fail('a', 3);
    clock.advance(1999);
    assert.equal(d.state('a'), 'open');
    clock.advance(1);
    assert.equal(d.state('a'), 'half-open', 'ejected for 2 * base, not min(3 * base, max)');
  });

  it('ignores late results while open and stale results while half-open', () => {
    const { d, clock, fail } = detector();
    fail('a', 3);
    d.report('a', true);
    assert.equal(d.state('a'), 'open');
    clock.advance(1000);
    d.report('a', true); // a request sent before the ejection, not a probe
    assert.equal(d.state('a'), 'half-open');
    d.report('a', false);
    assert.equal(d.state('a'), 'half-open');
  });

  it('never ejects more than maxEjectedPercent of the endpoints', () => {
    const { d, fail } = detector({ maxEjectedPercent: 50 });
    for (const id of ['a', 'b', 'c', 'd']) fail(id, 3);
    assert.deepEqual([...d.ejected].sort(), ['a', 'b']);
    assert.equal(d.state('c'), 'closed');
    const single = detector({ maxEjectedPercent: 50 }, ['only']);
    single.fail('only', 10);
    assert.equal(single.d.state('only'), 'closed', 'half of one endpoint is none');
    const all = detector({ maxEjectedPercent: 100 }, ['only']);
    all.fail('only', 3);
    assert.equal(all.d.state('only'), 'open');
  });

  it('counts half-open endpoints as out of rotation, and frees the share when one closes', () => {
    const { d, clock, fail } = detector({ maxEjectedPercent: 25 });
    fail('a', 3);
    clock.advance(1000);
    assert.equal(d.state('a'), 'half-open');
    fail('b', 3);
    assert.equal(d.state('b'), 'closed');
    d.allow('a');
    d.report('a', true);
    fail('b', 1);
    assert.equal(d.state('b'), 'open');
  });

  it('forgets endpoints that left the set, timers included', () => {
    const { d, clock, changes, fail } = detector({ maxEjectedPercent: 50 });
    fail('a', 3);
    fail('b', 3);
    d.setEndpoints(['b', 'c', 'd', 'e']);
    assert.deepEqual([...d.ejected], ['b']);
    assert.equal(d.state('a'), 'closed');
    assert.equal(clock.pendingTimers, 1);
    fail('c', 3);
    assert.equal(d.state('c'), 'open', 'a left: two of four may be out again');
    clock.advance(5000);
    assert.ok(!changes.includes('a:half-open'));
  });

  it('stops calling a listener once unsubscribed', () => {
    const { d, fail } = detector();
    const seen: CircuitState[] = [];
    const off = d.onChange((_id, s) => seen.push(s));
    fail('a', 3);
    off();
    fail('b', 3);
    assert.deepEqual(seen, ['open']);
  });

  it('execute() rejects with CIRCUIT_OPEN when ejected and reports results and failures', async () => {
    const { d } = detector({ consecutiveFailures: 2, maxEjectedPercent: 25 });
    const refused = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    await assert.rejects(
      d.execute('a', () => Promise.reject(refused)),
      refused,
    );
    // A 4xx-like error is an answer from the endpoint, not its failure.
    await assert.rejects(d.execute('a', () => Promise.reject(errors.validation('x', 'bad'))));
    await assert.rejects(d.execute('a', () => Promise.reject(refused)));
    assert.equal(d.state('a'), 'closed');
    const status = (s: number) =>
      d.execute(
        'a',
        async () => s,
        (x) => x < 500,
      );
    assert.equal(await status(503), 503);
    assert.equal(d.state('a'), 'open');
    await assert.rejects(status(200), (err) => isMeshError(err, ERROR_CODES.CLIENT_CIRCUIT_OPEN));
    await assert.rejects(d.execute('b', () => Promise.reject(errors.clientTimeout('try', 5))));
    await assert.rejects(d.execute('b', () => Promise.reject(errors.clientTimeout('try', 5))));
    assert.equal(d.state('b'), 'closed', 'maxEjectedPercent 25: a is out, b may not be');
  });

  it('validates its options', () => {
    assert.throws(
      () => new OutlierDetector({ baseEjectionMs: 10, maxEjectionMs: 5, halfOpenProbes: 0 }),
      (err) =>
        isMeshError(err, ERROR_CODES.CONFIG_INVALID) &&
        /circuitBreaker\.maxEjectionMs/.test(err.message) &&
        /circuitBreaker\.halfOpenProbes/.test(err.message),
    );
    assert.equal(new OutlierDetector().options.maxEjectedPercent, 50);
  });
});
