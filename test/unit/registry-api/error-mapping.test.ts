/** clientErrorOf and toHttpError: parse errors of node's HTTP parser as the API's errors (issue 16). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODES } from '../../../src/core/errors.js';
import { clientErrorOf, toHttpError } from '../../../src/registry-api/error-mapping.js';

const packet = (text: string) => Buffer.from(text, 'latin1');

describe('clientErrorOf', () => {
  it('tells a long request line (414) from large headers (431)', () => {
    const url = clientErrorOf(
      { code: 'HPE_HEADER_OVERFLOW', rawPacket: packet(`GET /${'a'.repeat(9000)}`) },
      false,
    );
    assert.equal(url.code, ERROR_CODES.URI_TOO_LONG);
    const head = clientErrorOf(
      {
        code: 'HPE_HEADER_OVERFLOW',
        rawPacket: packet(`GET / HTTP/1.1\r\nX: ${'a'.repeat(9000)}`),
      },
      false,
    );
    assert.equal(head.code, ERROR_CODES.HEADERS_TOO_LARGE);
    assert.equal(toHttpError(head).status, 431);
  });

  it('names the unknown method of the request the parser stopped in, past pipelined ones', () => {
    const text = 'GET / HTTP/1.1\r\nHost: a\r\n\r\nBREW /pot HTTP/1.1\r\n';
    const err = clientErrorOf(
      {
        code: 'HPE_INVALID_METHOD',
        rawPacket: packet(text),
        bytesParsed: text.indexOf('BREW') + 1,
      },
      false,
    );
    assert.equal(err.code, ERROR_CODES.METHOD_NOT_IMPLEMENTED);
    assert.match(err.message, /"BREW"/);
    assert.equal(toHttpError(err).status, 501);
  });

  it('answers a cut-off body as a malformed body, a cut-off head as a bad request', () => {
    assert.equal(
      clientErrorOf({ code: 'HPE_INVALID_EOF_STATE' }, true).code,
      ERROR_CODES.MALFORMED_BODY,
    );
    assert.equal(
      clientErrorOf({ code: 'HPE_INVALID_EOF_STATE' }, false).code,
      ERROR_CODES.BAD_REQUEST,
    );
  });

  it("answers node's request timeout with 408 and other parse errors with 400", () => {
    assert.equal(
      toHttpError(clientErrorOf({ code: 'ERR_HTTP_REQUEST_TIMEOUT' }, false)).status,
      408,
    );
    const other = toHttpError(clientErrorOf({ code: 'HPE_INVALID_HEADER_TOKEN' }, false));
    assert.equal(other.status, 400);
    assert.equal(other.body.error.code, ERROR_CODES.BAD_REQUEST);
  });
});
