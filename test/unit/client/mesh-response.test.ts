/** @module Unit tests of MeshResponse: a real Response whose body and headers are made lazily. */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { MeshResponse } from '../../../src/client/mesh-response.js';

const make = (body: Uint8Array | Readable | null, headers = {}) =>
  new MeshResponse(
    200,
    'OK',
    { 'content-type': 'application/json', ...headers },
    body,
    'http://payments/x',
  );

describe('MeshResponse', () => {
  it('is a Response, with status, headers (repeated ones too) and url', () => {
    const r = make(Buffer.from('{}'), { 'set-cookie': ['a=1', 'b=2'] });
    assert.ok(r instanceof Response);
    assert.equal(r.status, 200);
    assert.equal(r.ok, true);
    assert.equal(r.statusText, 'OK');
    assert.equal(r.url, 'http://payments/x');
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.deepEqual(r.headers.getSetCookie(), ['a=1', 'b=2']);
    assert.equal(r.headers, r.headers, 'one Headers object');
  });

  it('reads the body once, as text, json, bytes, arrayBuffer or blob', async () => {
    const json = make(Buffer.from('{"a":1}'));
    assert.equal(json.bodyUsed, false);
    assert.deepEqual(await json.json(), { a: 1 });
    assert.equal(json.bodyUsed, true);
    await assert.rejects(json.text(), /already been read/);
    assert.equal(await make(Buffer.from('hé')).text(), 'hé');
    const bytes = (r: MeshResponse): Promise<Uint8Array> =>
      (r as unknown as { bytes(): Promise<Uint8Array> }).bytes(); // Node 20's types lack it
    assert.deepEqual([...(await bytes(make(Buffer.from('ab'))))], [97, 98]);
    assert.equal((await make(Buffer.from('abc')).arrayBuffer()).byteLength, 3);
    const blob = await make(Buffer.from('xyz')).blob();
    assert.equal(blob.type, 'application/json');
    assert.equal(await blob.text(), 'xyz');
    assert.equal(await make(null).text(), '');
  });

  it('streams a Node stream body, through text() or the web stream', async () => {
    assert.equal(await make(Readable.from([Buffer.from('ab'), Buffer.from('cd')])).text(), 'abcd');
    const web = make(Readable.from([Buffer.from('ef')])).body;
    const reader = web!.getReader();
    const first = await reader.read();
    assert.equal(Buffer.from(first.value!).toString(), 'ef');
    assert.equal(make(null).body, null);
    const bytesBody = await new Response(make(Buffer.from('gh')).body).text();
    assert.equal(bytesBody, 'gh');
  });

  it('clones bytes and streams, each copy reading the whole body', async () => {
    const a = make(Buffer.from('same'));
    const b = a.clone();
    assert.equal(await a.text(), 'same');
    assert.equal(await b.text(), 'same');
    const s = make(Readable.from([Buffer.from('st'), Buffer.from('ream')]));
    const t = s.clone();
    const [x, y] = await Promise.all([s.text(), t.text()]);
    assert.equal(x, 'stream');
    assert.equal(y, 'stream');
    await a.text().catch(() => undefined);
    assert.throws(() => a.clone(), /already been read/);
  });

  it('parses form bodies through a plain Response', async () => {
    const form = make(Buffer.from('a=1&b=2'), {
      'content-type': 'application/x-www-form-urlencoded',
    });
    const data = await form.formData();
    assert.equal(data.get('b'), '2');
  });
});
