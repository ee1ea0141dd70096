/**
 * Request bodies and names the HTTP API refuses rather than misreads, on both APIs over real
 * HTTP on port 0 (issue 16): `__proto__` keys, charsets other than UTF-8, control characters.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { http, useTestAgent } from '../helpers/agent.js';

/** A registration of the service `input`, with `over` on top. */
const reg = (over: Record<string, unknown> = {}) =>
  Object.assign({ service: 'input', id: 'input-1', address: '10.0.0.5', port: 8080 }, over);

describe('API input', () => {
  const agent = useTestAgent();

  /** PUT of a raw JSON text (so that `__proto__` stays a key) with `type` as Content-Type. */
  const putText = (path: string, text: string, type = 'application/json') =>
    http(agent().url, 'PUT', path, text, { 'content-type': type });

  describe('__proto__ keys', () => {
    it('refuses meta.__proto__ (and one nested anywhere) with 400 naming the field', async () => {
      const r = await putText(
        '/api/v1/instances',
        '{"service":"input","address":"10.0.0.5","port":80,"meta":{"a":"1","__proto__":"x"}}',
      );
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.error.code, 'MESHWORK_ERR_API_VALIDATION');
      assert.equal(r.body.error.field, 'meta.__proto__');
      const escaped = await putText(
        '/api/v1/apply',
        '{"set":"s","instances":[{"service":"input","address":"10.0.0.5","port":80,' +
          '"meta":{"\\u005f_proto__":"x"}}]}',
      );
      assert.equal(escaped.status, 400, escaped.text);
      assert.equal(escaped.body.error.field, 'instances[0].meta.__proto__');
      const consul = await putText(
        '/v1/agent/service/register',
        '{"Name":"input","Port":80,"Meta":{"__proto__":"x"}}',
      );
      assert.equal(consul.status, 400, consul.text);
      assert.match(consul.text, /^Request decode failed: Meta.__proto__: /);
      const list = await http(agent().url, 'GET', '/api/v1/services/input/instances');
      assert.equal(list.body.instances.length, 0, 'nothing was registered');
    });

    it('keeps meta keys named constructor and prototype as they were sent', async () => {
      const r = await http(
        agent().url,
        'PUT',
        '/api/v1/instances',
        reg({ id: 'proto-keys', meta: { constructor: 'c', prototype: 'p' } }),
      );
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.instance.meta, { constructor: 'c', prototype: 'p' });
      await http(agent().url, 'DELETE', '/api/v1/instances/proto-keys');
    });
  });

  describe('charsets', () => {
    it('answers a JSON body in a charset other than UTF-8 with 415 naming it', async () => {
      const body = JSON.stringify(reg());
      for (const type of [
        'application/json; charset=utf-16',
        'application/json;charset="latin1"',
        'text/plain; CHARSET=ISO-8859-1',
      ]) {
        const r = await http(
          agent().url,
          'PUT',
          '/api/v1/instances',
          Buffer.from(body, 'utf16le'),
          {
            'content-type': type,
          },
        );
        assert.equal(r.status, 415, type);
        assert.equal(r.body.error.code, 'MESHWORK_ERR_API_UNSUPPORTED_MEDIA_TYPE');
        assert.match(r.body.error.message, /charset/);
      }
      const consul = await putText(
        '/v1/agent/service/register',
        '{"Name":"input","Port":80}',
        'application/json; charset=utf-16',
      );
      assert.equal(consul.status, 415);
      assert.match(consul.text, /unsupported charset "utf-16"/);
    });

    it('accepts UTF-8 in any spelling, and no charset at all', async () => {
      for (const type of [
        'application/json',
        'application/json; charset=utf-8',
        'application/json; charset="UTF-8"',
        'application/json;charset=utf8',
      ]) {
        const r = await putText('/api/v1/instances', JSON.stringify(reg()), type);
        assert.equal(r.status, 200, `${type}: ${r.text}`);
      }
      await http(agent().url, 'DELETE', '/api/v1/instances/input-1');
    });
  });

  describe('control characters in names', () => {
    it('refuses them in apply sets, tags, protocols, check names and headers, naming the field', async () => {
      const cases: [string, unknown, string][] = [
        ['/api/v1/apply', { set: '\u0000', instances: [] }, 'set'],
        ['/api/v1/apply', { set: 'ok\u001b[31m', instances: [] }, 'set'],
        ['/api/v1/instances', reg({ tags: ['a', 'b\u0007'] }), 'tags[1]'],
        ['/api/v1/instances', reg({ protocols: ['h\u0085'] }), 'protocols[0]'],
        ['/api/v1/instances', reg({ checks: [{ ttl: '10s', name: 'x\ny' }] }), 'checks[0].name'],
        [
          '/api/v1/instances',
          reg({
            checks: [
              { http: { url: 'http://127.0.0.1/', headers: { 'x\r': 'v' } }, interval: '10s' },
            ],
          }),
          'checks[0].http.headers.x\r',
        ],
      ];
      for (const [path, body, field] of cases) {
        const r = await http(agent().url, 'PUT', path, body);
        assert.equal(r.status, 400, `${field}: ${r.text}`);
        assert.equal(r.body.error.field, field);
        assert.match(r.body.error.message, /control characters/);
      }
    });

    it('refuses them in KV keys, C1 included', async () => {
      for (const key of ['a%00b', 'a%7Fb', 'a%C2%85b']) {
        const r = await http(agent().url, 'PUT', `/api/v1/kv/${key}`, 'v');
        assert.equal(r.status, 400, key);
        assert.equal(r.body.error.field, 'key');
      }
    });

    it('refuses them in Consul tags, check names and check headers', async () => {
      const cases: [unknown, RegExp][] = [
        [{ Name: 'input', Port: 80, Tags: ['a\u0000'] }, /^Invalid service tags: /],
        [
          { Name: 'input', Port: 80, Check: { TTL: '10s', Name: 'c\u0001' } },
          /^Invalid check: Name: /,
        ],
        [
          {
            Name: 'input',
            Port: 80,
            Check: { HTTP: 'http://127.0.0.1/', Interval: '10s', Header: { X: ['a\nb'] } },
          },
          /^Invalid check: Header "X": /,
        ],
      ];
      for (const [body, message] of cases) {
        const r = await http(agent().url, 'PUT', '/v1/agent/service/register', body);
        assert.equal(r.status, 400, r.text);
        assert.match(r.text, message);
        assert.match(r.text, /control characters/);
      }
      const check = await http(agent().url, 'PUT', '/v1/agent/check/register', {
        Name: 'node\u007fcheck',
        CheckID: 'node-check',
        TTL: '10s',
      });
      assert.equal(check.status, 400, check.text);
      assert.match(check.text, /control characters/);
    });
  });
});
