import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { FilterExchange, LocalReply } from '../../../../src/proxy/filter.js';
import { isDelay } from '../../../../src/proxy/filter.js';
import {
  createFaultFilter,
  faultProblems,
} from '../../../../src/proxy/filters/fault/fault-filter.js';
import { seededRandom } from '../../../helpers/seeded-random.js';

const ex = {} as FilterExchange;

/** Counts over n requests: delayed, aborted (with or without a delay), passed. */
function tally(filter: ReturnType<typeof createFaultFilter>, n: number) {
  let delayed = 0;
  let aborted = 0;
  let passed = 0;
  for (let i = 0; i < n; i++) {
    const s = filter?.onRequest?.(ex) ?? 'continue';
    if (s === 'continue') passed++;
    else if (isDelay(s)) {
      delayed++;
      if (s.reply !== undefined) aborted++;
    } else aborted++;
  }
  return { delayed, aborted, passed };
}

describe('fault filter', () => {
  it('aborts about percent % of requests with the status and the engine error shape', () => {
    const f = createFaultFilter({ abort: { status: 503, percent: 25 } }, seededRandom(7));
    const t = tally(f, 2000);
    assert.ok(Math.abs(t.aborted / 2000 - 0.25) < 0.03, `aborted ${t.aborted}`);
    assert.equal(t.delayed, 0);
    const reply = createFaultFilter({ abort: { status: 418, percent: 100 } })?.onRequest?.(
      ex,
    ) as LocalReply;
    assert.equal(reply.status, 418);
    assert.deepEqual(reply.body, {
      error: {
        code: 'MESHWORK_ERR_PROXY_FAULT_ABORT',
        message: 'fault injected: aborted with 418',
        status: 418,
      },
    });
  });

  it('delays about percent % of requests by ms, independently of the abort', () => {
    const f = createFaultFilter(
      { delay: { ms: 250, percent: 40 }, abort: { status: 500, percent: 10 } },
      seededRandom(11),
    );
    const t = tally(f, 2000);
    assert.ok(Math.abs(t.delayed / 2000 - 0.4) < 0.03, `delayed ${t.delayed}`);
    assert.ok(Math.abs(t.aborted / 2000 - 0.1) < 0.03, `aborted ${t.aborted}`);
    const s = createFaultFilter({ delay: { ms: 250, percent: 100 } })?.onRequest?.(ex);
    assert.deepEqual(s, { delayMs: 250, reply: undefined });
  });

  it('is no filter at all when nothing would be injected', () => {
    assert.equal(createFaultFilter({}), undefined);
    assert.equal(createFaultFilter({ delay: { ms: 5, percent: 0 } }), undefined);
  });

  it('names each bad field', () => {
    assert.deepEqual(
      faultProblems(
        { delay: { ms: -1, percent: 101 }, abort: { status: 99, percent: Number.NaN } },
        'f',
      ),
      [
        'f.delay.percent: must be 0..100',
        'f.delay.ms: must be a whole number of ms, 0..3600000',
        'f.abort.percent: must be 0..100',
        'f.abort.status: must be an HTTP status 200..599',
      ],
    );
  });

  it('accepts exactly the options it builds (property)', () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            delay: fc.record({ ms: fc.integer({ min: -5, max: 4_000_000 }), percent: fc.double() }),
            abort: fc.record({ status: fc.integer({ min: 0, max: 700 }), percent: fc.double() }),
          },
          { requiredKeys: [] },
        ),
        (o) => {
          const problems = faultProblems(o, 'f');
          const valid =
            (o.delay === undefined ||
              (o.delay.ms >= 0 &&
                o.delay.ms <= 3_600_000 &&
                o.delay.percent >= 0 &&
                o.delay.percent <= 100)) &&
            (o.abort === undefined ||
              (o.abort.status >= 200 &&
                o.abort.status <= 599 &&
                o.abort.percent >= 0 &&
                o.abort.percent <= 100));
          assert.equal(problems.length === 0, valid, problems.join('; '));
          if (valid) {
            const f = createFaultFilter(o, seededRandom(1));
            for (let i = 0; i < 5; i++) f?.onRequest?.(ex);
          }
        },
      ),
    );
  });
});
