/**
 * @module node's own HTTP/1.1 parser (llhttp, the C parser node:http runs on), reached through
 * `_http_common`, shared by the gateway's upstream client (Http1Agent) and its downstream server
 * (Http1Server). It is a node internal: this module checks its shape once, at load, and the
 * gateway falls back to undici and node:http when it is missing or changed
 * (docs/architecture.md, "the proxy's own HTTP/1.1 client and server").
 */
import { createRequire } from 'node:module';

export interface NodeHttpParser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void;
  /** Bytes parsed, or the parse error (its `code` is an `HPE_*` one). */
  execute(data: Buffer): number | Error;
  finish(): number | Error | undefined;
  close(): void;
  [key: number]: unknown;
}

export interface NodeHttpParserClass {
  new (): NodeHttpParser;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
}

interface HttpCommon {
  readonly HTTPParser?: unknown;
  readonly methods?: unknown;
}

const common: HttpCommon | undefined = (() => {
  try {
    return createRequire(import.meta.url)('_http_common') as HttpCommon;
  } catch {
    return undefined;
  }
})();

/** node's HTTPParser, if this runtime exposes it with the shape relied on here. */
export const HTTPParser: NodeHttpParserClass | undefined = (() => {
  try {
    const P = common?.HTTPParser as NodeHttpParserClass | undefined;
    if (typeof P !== 'function') return undefined;
    const keys = [
      P.REQUEST,
      P.RESPONSE,
      P.kOnHeaders,
      P.kOnHeadersComplete,
      P.kOnBody,
      P.kOnMessageComplete,
    ];
    if (!keys.every((k) => typeof k === 'number')) return undefined;
    const p = new P();
    if (typeof p.initialize !== 'function' || typeof p.execute !== 'function') return undefined;
    return P;
  } catch {
    return undefined;
  }
})();

/** The method names by the parser's method number (a request head gives the number). */
export const PARSER_METHODS: readonly string[] | undefined = (() => {
  const m = common?.methods;
  return Array.isArray(m) && m.every((x) => typeof x === 'string') ? (m as string[]) : undefined;
})();

/** Whether the parser is there for the upstream client (responses). */
export function isResponseParserSupported(): boolean {
  return HTTPParser !== undefined;
}

/** Whether the parser is there for the downstream server (requests need the method names). */
export function isRequestParserSupported(): boolean {
  return HTTPParser !== undefined && PARSER_METHODS !== undefined;
}
