/**
 * @module NATIVE_HTTP1_SUPPORT: whether the gateway's own HTTP/1.1 server and client can run on
 * this runtime, decided once, at load, by a self-test that parses a sample request and a sample
 * response through node's parser (node-parser.ts) and checks every field the transport reads.
 */
import {
  createParser,
  HTTPParser,
  PARSER_METHODS,
  type NodeHttpParserClass,
  type ParsedHead,
} from './node-parser.js';

/**
 * Why each native side cannot run here, or undefined where it can. A gateway asked for a native
 * side that cannot run falls back (undici, node:http) with a warning and a metric.
 */
export interface NativeHttp1Support {
  /** Http1Server: the request self-test (and node's method table). */
  readonly server: string | undefined;
  /** Http1Agent: the response self-test. */
  readonly agent: string | undefined;
}

/**
 * The sample request, in two reads cut inside the head (so the head is handed over in parts,
 * as a long one is), with a query and a Content-Length body.
 */
const SAMPLE_REQUEST = [
  'POST /probe?q=1 HTTP/1.1\r\nHost: probe\r\nX-Pro',
  'be: a\r\nContent-Length: 5\r\n\r\nhello',
];
const REQUEST_HEADERS = ['Host', 'probe', 'X-Probe', 'a', 'Content-Length', '5'];

/** The sample response: a reason phrase and a chunked body (the parser decodes it). */
const SAMPLE_RESPONSE = [
  'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
];
const RESPONSE_HEADERS = ['Content-Type', 'text/plain', 'Transfer-Encoding', 'chunked'];

/** What the parser made of a sample. */
interface Parsed {
  head: ParsedHead | undefined;
  body: string;
  completed: number;
}

/** Parses `chunks` with a fresh parser of `kind`; a string is the parse error. */
function parseSample(
  P: NodeHttpParserClass,
  kind: 'request' | 'response',
  chunks: readonly string[],
): Parsed | string {
  const out: Parsed = { head: undefined, body: '', completed: 0 };
  const parser = createParser(
    kind,
    0,
    {
      onHead: (h) => {
        out.head = h;
        return 0;
      },
      onBody: (chunk) => void (out.body += chunk.toString('latin1')),
      onComplete: () => void out.completed++,
    },
    P,
  );
  try {
    for (const chunk of chunks) {
      const r = parser.execute(Buffer.from(chunk, 'latin1'));
      if (r instanceof Error) return `parse error ${(r as { code?: string }).code ?? r.message}`;
      if (r !== chunk.length) return `parsed ${String(r)} of ${chunk.length} bytes`;
    }
  } finally {
    // Not inside one of its callbacks: freed at once.
    parser.close();
  }
  return out;
}

/** The first field of `got` that differs from `want`, as a reason; undefined when none does. */
function mismatch(kind: string, got: Record<string, unknown>, want: Record<string, unknown>) {
  for (const key in want) {
    const a = JSON.stringify(got[key]);
    const b = JSON.stringify(want[key]);
    if (a !== b) return `${kind} self-test: ${key} is ${a}, not ${b}`;
  }
  return undefined;
}

function testRequests(P: NodeHttpParserClass, methods: readonly string[]): string | undefined {
  const r = parseSample(P, 'request', SAMPLE_REQUEST);
  if (typeof r === 'string') return `request self-test: ${r}`;
  const h = r.head;
  return mismatch(
    'request',
    {
      method: h === undefined ? undefined : methods[h.method],
      url: h?.url,
      version: h === undefined ? undefined : [h.versionMajor, h.versionMinor],
      rawHeaders: h?.rawHeaders,
      keepAlive: h?.keepAlive,
      upgrade: h?.upgrade,
      body: r.body,
      completed: r.completed,
    },
    {
      method: 'POST',
      url: '/probe?q=1',
      version: [1, 1],
      rawHeaders: REQUEST_HEADERS,
      keepAlive: true,
      upgrade: false,
      body: 'hello',
      completed: 1,
    },
  );
}

function testResponses(P: NodeHttpParserClass): string | undefined {
  const r = parseSample(P, 'response', SAMPLE_RESPONSE);
  if (typeof r === 'string') return `response self-test: ${r}`;
  const h = r.head;
  return mismatch(
    'response',
    {
      status: h?.status,
      statusText: h?.statusText,
      version: h === undefined ? undefined : [h.versionMajor, h.versionMinor],
      rawHeaders: h?.rawHeaders,
      keepAlive: h?.keepAlive,
      body: r.body,
      completed: r.completed,
    },
    {
      status: 200,
      statusText: 'OK',
      version: [1, 1],
      rawHeaders: RESPONSE_HEADERS,
      keepAlive: true,
      body: 'hello',
      completed: 1,
    },
  );
}

/**
 * Runs the self-test against a parser class and method table (node's, at load; others only in
 * tests). Never throws: a throw is a reason too.
 */
export function probeNativeHttp1(
  P: NodeHttpParserClass | undefined,
  methods: readonly string[] | undefined,
): NativeHttp1Support {
  if (P === undefined) {
    const why = "node's HTTP parser (_http_common.HTTPParser) is missing or changed shape";
    return { server: why, agent: why };
  }
  const guard = (test: () => string | undefined): string | undefined => {
    try {
      return test();
    } catch (err) {
      return `self-test threw: ${(err as Error).message}`;
    }
  };
  return {
    server:
      methods === undefined
        ? "node's method table (_http_common.methods) is missing"
        : guard(() => testRequests(P, methods)),
    agent: guard(() => testResponses(P)),
  };
}

/** This runtime's answer, decided once at load. */
export const NATIVE_HTTP1_SUPPORT: NativeHttp1Support = Object.freeze(
  probeNativeHttp1(HTTPParser, PARSER_METHODS),
);
