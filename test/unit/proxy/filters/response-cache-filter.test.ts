import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { FilterExchange, LocalReply } from '../../../../src/proxy/filter.js';
import {
  createResponseCacheFilter,
  freshnessMs,
  responseCacheProblems,
} from '../../../../src/proxy/filters/response-cache/response-cache-filter.js';
import { FakeClock } from '../../../../src/testing/fake-clock.js';

function exchange(path: string, headers: IncomingHttpHeaders = {}, method = 'GET'): FilterExchange {
  return {
    method,
    socket: {},
    headers: { host: 'shop', ...headers },
    path,
    setRequestHeader: () => {},
    addRequestHeader: () => {},
    removeRequestHeader: () => {},
  };
}

/** Runs one request through the cache; an upstream answer (`status`, `headers`, `body`) on a miss. */
function run(
  cache: ReturnType<typeof createResponseCacheFilter>,
  ex: FilterExchange,
  upstream: { status?: number; headers?: string[]; body?: string } = {},
): { from: 'cache' | 'upstream'; status: number; headers: string[]; body: string } {
  const s = cache.onRequest?.(ex);
  if (s !== undefined && s !== 'continue') {
    const r = (s as LocalReply).raw as { headers: readonly string[]; body: Buffer };
    return {
      from: 'cache',
      status: (s as LocalReply).status,
      headers: [...r.headers],
      body: r.body.toString(),
    };
  }
  const headers = [...(upstream.headers ?? ['cache-control', 'max-age=60'])];
  const status = upstream.status ?? 200;
  const tap = cache.onResponse?.(ex, status, headers);
  const body = upstream.body ?? 'hello';
  tap?.onData(Buffer.from(body.slice(0, 2)));
  tap?.onData(Buffer.from(body.slice(2)));
  tap?.onEnd();
  return { from: 'upstream', status, headers, body };
}

const header = (list: string[], name: string): string | undefined => {
  for (let i = 0; i < list.length; i += 2) if (list[i]?.toLowerCase() === name) return list[i + 1];
  return undefined;
};

describe('response cache filter', () => {
  it('answers a fresh GET from memory with age and a hit marker, and misses after max-age', () => {
    const clock = new FakeClock();
    const counts = { cacheHit: 0, cacheMiss: 0, cacheBypass: 0 };
    const cache = createResponseCacheFilter({ maxEntries: 10, maxBodyBytes: 100 }, clock, counts);
    const first = run(cache, exchange('/a'), {
      headers: ['cache-control', 'max-age=60', 'x-v', '1'],
    });
    assert.equal(first.from, 'upstream');
    assert.equal(header(first.headers, 'x-meshwork-cache'), 'miss');
    clock.advance(2_500);
    const hit = run(cache, exchange('/a'));
    assert.equal(hit.from, 'cache');
    assert.equal(hit.body, 'hello');
    assert.equal(header(hit.headers, 'age'), '2');
    assert.equal(header(hit.headers, 'x-meshwork-cache'), 'hit');
    assert.equal(header(hit.headers, 'content-length'), '5');
    assert.equal(header(hit.headers, 'x-v'), '1');
    clock.advance(57_500);
    assert.equal(run(cache, exchange('/a')).from, 'upstream');
    assert.deepEqual(counts, { cacheHit: 1, cacheMiss: 2, cacheBypass: 0 });
  });

  it('prefers s-maxage, falls back to defaultTtlMs, and keeps nothing without either', () => {
    assert.equal(freshnessMs(200, ['cache-control', 'max-age=5, s-maxage=9'], undefined), 9000);
    assert.equal(freshnessMs(200, [], 1234), 1234);
    assert.equal(freshnessMs(200, [], undefined), undefined);
    assert.equal(freshnessMs(200, ['Cache-Control', 'max-age=0'], 1000), undefined);
  });

  it('does not keep no-store, no-cache, private, Vary, Set-Cookie or an uncacheable status', () => {
    for (const headers of [
      ['cache-control', 'no-store, max-age=60'],
      ['cache-control', 'no-cache, max-age=60'],
      ['cache-control', 'private, max-age=60'],
      ['cache-control', 'max-age=60', 'vary', 'accept'],
      ['cache-control', 'max-age=60', 'set-cookie', 'a=b'],
    ])
      assert.equal(freshnessMs(200, headers, undefined), undefined, headers.join(' '));
    assert.equal(freshnessMs(500, ['cache-control', 'max-age=60'], undefined), undefined);
    const cache = createResponseCacheFilter({ maxEntries: 10, maxBodyBytes: 100 }, new FakeClock());
    run(cache, exchange('/v'), { headers: ['cache-control', 'max-age=60', 'vary', 'accept'] });
    assert.equal(run(cache, exchange('/v')).from, 'upstream');
  });

  it('bypasses a request with Cache-Control no-cache or Authorization, and methods but GET and HEAD', () => {
    const cache = createResponseCacheFilter({ maxEntries: 10, maxBodyBytes: 100 }, new FakeClock());
    run(cache, exchange('/a'));
    const bypass = run(cache, exchange('/a', { 'cache-control': 'no-cache' }));
    assert.equal(bypass.from, 'upstream');
    assert.equal(header(bypass.headers, 'x-meshwork-cache'), 'bypass');
    assert.equal(run(cache, exchange('/a', { authorization: 'Bearer x' })).from, 'upstream');
    const post = run(cache, exchange('/a', {}, 'POST'));
    assert.equal(post.from, 'upstream');
    assert.equal(header(post.headers, 'x-meshwork-cache'), undefined);
    assert.equal(run(cache, exchange('/a')).from, 'cache');
  });

  it('keys on method, host and path with query', () => {
    const cache = createResponseCacheFilter({ maxEntries: 10, maxBodyBytes: 100 }, new FakeClock());
    run(cache, exchange('/a?x=1'));
    assert.equal(run(cache, exchange('/a?x=2')).from, 'upstream');
    assert.equal(run(cache, exchange('/a?x=1', { host: 'other' })).from, 'upstream');
    assert.equal(run(cache, exchange('/a?x=1', {}, 'HEAD')).from, 'upstream');
    assert.equal(run(cache, exchange('/a?x=1')).from, 'cache');
  });

  it('drops the least recently used entry past maxEntries, and keeps no body above maxBodyBytes', () => {
    const cache = createResponseCacheFilter({ maxEntries: 2, maxBodyBytes: 5 }, new FakeClock());
    run(cache, exchange('/1'));
    run(cache, exchange('/2'));
    assert.equal(run(cache, exchange('/1')).from, 'cache'); // /1 is now the most recent
    run(cache, exchange('/3'));
    assert.equal(cache.size, 2);
    assert.equal(run(cache, exchange('/2')).from, 'upstream'); // /2 was dropped
    run(cache, exchange('/big'), { body: 'too large' });
    assert.equal(run(cache, exchange('/big')).from, 'upstream');
    run(cache, exchange('/declared'), {
      headers: ['cache-control', 'max-age=9', 'content-length', '99'],
    });
    assert.equal(run(cache, exchange('/declared')).from, 'upstream');
  });

  it('never throws on any Cache-Control value, and keeps only what has a freshness (property)', () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 100, max: 599 }), (value, status) => {
        const ttl = freshnessMs(status, ['cache-control', value], undefined);
        assert.ok(ttl === undefined || (Number.isInteger(ttl) && ttl > 0));
      }),
    );
    assert.deepEqual(
      responseCacheProblems({ maxEntries: 0, maxBodyBytes: -1, defaultTtlMs: 1.5 }, 'c'),
      [
        'c.maxEntries: must be a whole number 1..1000000',
        'c.maxBodyBytes: must be a whole number 0..67108864 (64 MiB)',
        'c.defaultTtlMs: must be a whole number of ms, 0..31536000000',
      ],
    );
  });
});
