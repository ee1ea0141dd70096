/** @module DnsForwarder: sends a query for a name outside our domains to the upstream recursors. */
import { createSocket } from 'node:dgram';
import { connect, isIPv6 } from 'node:net';

export interface Recursor {
  readonly host: string;
  readonly port: number;
}

/** `1.1.1.1`, `127.0.0.1:5353`, `[::1]:53` → host and port (53 when omitted). */
export function parseRecursor(text: string): Recursor {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed !== null) return { host: bracketed[1] as string, port: Number(bracketed[2] ?? 53) };
  if (isIPv6(text)) return { host: text, port: 53 };
  const sep = text.lastIndexOf(':');
  return sep < 0
    ? { host: text, port: 53 }
    : { host: text.slice(0, sep), port: Number(text.slice(sep + 1)) };
}

/**
 * Asks each recursor in turn (`timeoutMs` each), over the transport the client used, and
 * resolves with the first response that carries the query's id, or undefined when none
 * answered. Never rejects. A truncated UDP answer is relayed as it is: the client retries over
 * TCP, and that retry is forwarded over TCP.
 */
export async function forwardQuery(
  query: Buffer,
  recursors: readonly Recursor[],
  timeoutMs: number,
  transport: 'udp' | 'tcp' = 'udp',
): Promise<Buffer | undefined> {
  for (const r of recursors) {
    const answer =
      transport === 'tcp'
        ? await askOneTcp(query, r, timeoutMs)
        : await askOne(query, r, timeoutMs);
    if (answer !== undefined) return answer;
  }
  return undefined;
}

/** One query over TCP (RFC 7766 framing); the first complete frame with our id answers. */
function askOneTcp(query: Buffer, r: Recursor, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const id = query.readUInt16BE(0);
    const socket = connect(r.port, r.host);
    let pending: Buffer = Buffer.alloc(0);
    const done = (answer: Buffer | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('error', () => done(undefined));
    socket.on('close', () => done(undefined));
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const frame = pending.subarray(2, 2 + pending.readUInt16BE(0));
        pending = pending.subarray(2 + frame.length);
        if (frame.length >= 12 && frame.readUInt16BE(0) === id) return done(Buffer.from(frame));
      }
    });
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16BE(query.length, 0);
    socket.write(Buffer.concat([prefix, query]));
  });
}

function askOne(query: Buffer, r: Recursor, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket(isIPv6(r.host) ? 'udp6' : 'udp4');
    const id = query.readUInt16BE(0);
    const done = (answer: Buffer | undefined): void => {
      clearTimeout(timer);
      socket.close();
      resolve(answer);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('error', () => done(undefined));
    socket.on('message', (msg) => {
      // Anything else on this socket (a late answer, a spoof attempt) is ignored.
      if (msg.length >= 12 && msg.readUInt16BE(0) === id) done(msg);
    });
    socket.send(query, r.port, r.host, (err) => {
      if (err) done(undefined);
    });
  });
}
