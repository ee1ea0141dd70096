import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ATTEMPT_HEADER, DEADLINE_HEADER } from '../../../src/client/resilience/index.js';
import {
  connectionTokens,
  isHopByHop,
  removeHeader,
  responseHeaderList,
  scanRequestHead,
  stripResponseHeaders,
  upstreamRequestHeaders,
} from '../../../src/proxy/headers.js';

/** The forwarding headers the proxy replaces with its own. */
const FORWARDING = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded'];

const facts = { remoteAddress: '10.1.2.3', proto: 'http' as const, host: 'api.example.com' };
const toObject = (flat: string[]): Record<string, string[]> => {
  const o: Record<string, string[]> = {};
  for (let i = 0; i < flat.length; i += 2)
    (o[(flat[i] as string).toLowerCase()] ??= []).push(flat[i + 1] as string);
  return o;
};

describe('upstreamRequestHeaders', () => {
  it('drops hop-by-hop headers and the ones Connection lists (RFC 9110 7.6.1)', () => {
    const out = toObject(
      upstreamRequestHeaders(
        [
          'Host',
          'api.example.com',
          'Connection',
          'keep-alive, X-Trace',
          'X-Trace',
          '1',
          'TE',
          'trailers',
          'Transfer-Encoding',
          'chunked',
          'Upgrade',
          'h2c',
          'Proxy-Authorization',
          'Basic x',
          'X-App',
          'a',
          'X-App',
          'b',
        ],
        facts,
        undefined,
        undefined,
      ),
    );
    assert.deepEqual(out.host, ['api.example.com']);
    assert.deepEqual(out['x-app'], ['a', 'b']);
    for (const h of [
      'connection',
      'x-trace',
      'te',
      'transfer-encoding',
      'upgrade',
      'proxy-authorization',
    ]) {
      assert.equal(out[h], undefined, h);
    }
  });

  it('appends to X-Forwarded-For and Forwarded and sets proto and host', () => {
    const out = toObject(
      upstreamRequestHeaders(
        ['x-forwarded-for', '1.1.1.1', 'Forwarded', 'for=1.1.1.1', 'x-forwarded-proto', 'https'],
        { ...facts, remoteAddress: '::1' },
        undefined,
        undefined,
      ),
    );
    assert.deepEqual(out['x-forwarded-for'], ['1.1.1.1, ::1']);
    assert.deepEqual(out['x-forwarded-proto'], ['http']);
    assert.deepEqual(out['x-forwarded-host'], ['api.example.com']);
    assert.deepEqual(out.forwarded, ['for=1.1.1.1, for="[::1]";host=api.example.com;proto=http']);
  });

  it('replaces the caller retry headers with extra ones and drops removed names', () => {
    const out = toObject(
      upstreamRequestHeaders(
        ['x-meshwork-attempt', '1', 'x-meshwork-deadline-ms', '900', 'x-drop', 'y'],
        facts,
        { 'x-meshwork-attempt': '2' },
        new Set(['x-drop']),
      ),
    );
    assert.deepEqual(out['x-meshwork-attempt'], ['2']);
    assert.equal(out['x-meshwork-deadline-ms'], undefined);
    assert.equal(out['x-drop'], undefined);
  });

  it('drops a removed name in any case, and only it, whatever the other names are (property)', () => {
    // Names of every length, some of a removed name's length: the length filter that spares
    // other names the lower-casing must drop exactly what checking every name would.
    const removable = [
      'x-meshwork-source-principal',
      'traceparent',
      'b3',
      'x-long-name-of-thirty-two-chars-',
    ];
    const name = fc.oneof(
      fc.constantFrom(
        ...removable,
        'TraceParent',
        'X-Meshwork-Source-Principal',
        'B3',
        'Keep-Alive',
      ),
      fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,40}$/),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(name, fc.constantFrom('v', 'w')), { maxLength: 12 }),
        fc.subarray(removable),
        (pairs, removed) => {
          const raw = pairs.flat();
          const remove = removed.length === 0 ? undefined : new Set(removed);
          const out = upstreamRequestHeaders(raw, facts, undefined, remove);
          // The reference: every name lower-cased and checked.
          const dropped = (lower: string): boolean =>
            removed.includes(lower) ||
            isHopByHop(lower) ||
            FORWARDING.includes(lower) ||
            lower === 'host' ||
            lower === ATTEMPT_HEADER ||
            lower === DEADLINE_HEADER;
          const kept = pairs.filter(([n]) => !dropped(n.toLowerCase()));
          // The request's own lines come first, in order; then host, the forwarding headers.
          const sent = [];
          for (let i = 0; i < out.length; i += 2) sent.push([out[i], out[i + 1]]);
          const own = sent.filter(([n]) => n !== 'host' && !FORWARDING.includes(n as string));
          assert.deepEqual(own, kept);
        },
      ),
    );
  });

  it('sends the one Host as the authority, in place or first when there was none (RFC 9112 3.2.2)', () => {
    const authority = { ...facts, host: 'a.example:81' };
    const raw = ['X-A', '1', 'HOST', 'b.example', 'X-B', '2'];
    assert.deepEqual(upstreamRequestHeaders(raw, authority, undefined, undefined).slice(0, 6), [
      'X-A',
      '1',
      'HOST',
      'a.example:81',
      'X-B',
      '2',
    ]);
    const none = upstreamRequestHeaders(['X-A', '1'], authority, undefined, undefined);
    assert.deepEqual(none.slice(0, 4), ['host', 'a.example:81', 'X-A', '1']);
    // A route that sets Host itself sends only its own.
    const set = toObject(
      upstreamRequestHeaders(raw, authority, { host: 'c.example' }, new Set(['host'])),
    );
    assert.deepEqual(set.host, ['c.example']);
  });

  it('keeps Host and Content-Length though Connection names them (RFC 9110 7.6.1)', () => {
    const out = toObject(
      upstreamRequestHeaders(
        [
          'Host',
          'api.example.com',
          'Connection',
          'close, Host, content-length, X-A',
          'Content-Length',
          '5',
          'X-A',
          '1',
        ],
        facts,
        undefined,
        undefined,
      ),
    );
    assert.deepEqual(out.host, ['api.example.com']);
    assert.deepEqual(out['content-length'], ['5']);
    assert.equal(out['x-a'], undefined);
  });

  it('keeps Upgrade and Connection: upgrade for an Upgrade request', () => {
    const out = toObject(
      upstreamRequestHeaders(
        ['Connection', 'Upgrade', 'Upgrade', 'websocket'],
        facts,
        undefined,
        undefined,
        true,
      ),
    );
    assert.deepEqual(out.upgrade, ['websocket']);
    assert.deepEqual(out.connection, ['upgrade']);
  });
});

describe('scanRequestHead', () => {
  it('counts Host lines and joins the Connection, X-Forwarded-For and Forwarded lines', () => {
    assert.deepEqual(
      scanRequestHead([
        'Hostname',
        'x',
        'Host',
        'a',
        'connection',
        'close',
        'X-Forwarded-For',
        '1.1.1.1',
        'x-forwarded-for',
        '2.2.2.2',
        'hOsT',
        'b',
        'Forwarded',
        'for=x',
      ]),
      {
        hosts: 2,
        hostAt: 2,
        connection: 'close',
        xff: '1.1.1.1, 2.2.2.2',
        forwarded: 'for=x',
      },
    );
  });
});

describe('stripResponseHeaders', () => {
  it('drops hop-by-hop and Connection-listed response headers', () => {
    const h = stripResponseHeaders([
      'Connection',
      'close, X-Secret',
      'x-secret',
      '1',
      'Keep-Alive',
      'timeout=5',
      'Transfer-Encoding',
      'chunked',
      'Content-Type',
      'text/plain',
      'Set-Cookie',
      'a=1',
      'set-cookie',
      'b=2',
    ]);
    assert.deepEqual(h, ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2']);
  });

  it('ignores close, keep-alive and upgrade as Connection tokens', () => {
    assert.equal(connectionTokens('close, keep-alive'), undefined);
    assert.deepEqual([...(connectionTokens('X-A , x-b') ?? [])], ['x-a', 'x-b']);
  });

  it('never lists Host or Content-Length as Connection tokens', () => {
    assert.equal(connectionTokens('close, Host, Content-Length'), undefined);
    assert.deepEqual([...(connectionTokens('host, x-a') ?? [])], ['x-a']);
  });

  it('reads raw header Buffers as latin1, so every byte passes unchanged', () => {
    const raw = [Buffer.from('X-Name'), Buffer.from([0x63, 0xe9, 0xff])];
    const list = responseHeaderList(raw);
    assert.deepEqual(list, ['X-Name', 'c\u00e9\u00ff']);
    assert.deepEqual(Buffer.from(list[1] as string, 'latin1'), raw[1]);
  });

  it('removes every header of a name, whatever its case', () => {
    const list = ['X-A', '1', 'x-b', '2', 'x-a', '3'];
    removeHeader(list, 'x-a');
    assert.deepEqual(list, ['x-b', '2']);
  });
});
