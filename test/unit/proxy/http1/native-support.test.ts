import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  NATIVE_HTTP1_SUPPORT,
  probeNativeHttp1,
} from '../../../../src/proxy/http1/native-support.js';
import {
  HTTPParser,
  PARSER_METHODS,
  type NodeHttpParserClass,
} from '../../../../src/proxy/http1/node-parser.js';

const P = HTTPParser as NodeHttpParserClass;

/** node's parser, but every read loses its last byte: a parser that no longer does its job. */
function lossyParser(): NodeHttpParserClass {
  class Lossy extends P {
    override execute(data: Buffer): number | Error {
      return super.execute(data.subarray(0, data.length - 1));
    }
  }
  return Lossy as unknown as NodeHttpParserClass;
}

describe('NATIVE_HTTP1_SUPPORT', () => {
  it('passes the self-test on the Node versions Meshwork runs on', () => {
    assert.deepEqual({ ...NATIVE_HTTP1_SUPPORT }, { server: undefined, agent: undefined });
  });

  it('refuses both sides, with a reason, when the parser is missing or changed shape', () => {
    const s = probeNativeHttp1(undefined, PARSER_METHODS);
    assert.match(s.server ?? '', /HTTPParser\) is missing or changed shape/);
    assert.equal(s.agent, s.server);
  });

  it('refuses the server alone when the method names are missing or wrong', () => {
    assert.match(probeNativeHttp1(P, undefined).server ?? '', /method table/);
    const wrong = probeNativeHttp1(P, ['GET']);
    assert.equal(wrong.server, 'request self-test: method is undefined, not "POST"');
    assert.equal(wrong.agent, undefined);
  });

  it('refuses a parser that parses the sample request and response wrong', () => {
    const s = probeNativeHttp1(lossyParser(), PARSER_METHODS);
    assert.match(s.server ?? '', /^request self-test: parsed \d+ of \d+ bytes$/);
    assert.match(s.agent ?? '', /^response self-test: parsed \d+ of \d+ bytes$/);
  });

  it('refuses, and does not throw, when the parser throws', () => {
    class Throwing extends P {
      override execute(): number | Error {
        throw new Error('boom');
      }
    }
    const s = probeNativeHttp1(Throwing as unknown as NodeHttpParserClass, PARSER_METHODS);
    assert.equal(s.server, 'self-test threw: boom');
    assert.equal(s.agent, 'self-test threw: boom');
  });
});
