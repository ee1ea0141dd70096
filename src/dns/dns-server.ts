/**
 * @module DnsServer: the UDP and TCP listeners of the DNS interface (one port for both), the
 * per-message error boundary, EDNS0 and truncation. Answers come from {@link DnsAnswerBuilder}.
 */
import { channel } from 'node:diagnostics_channel';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP, isIPv6, createServer, type Server, type Socket } from 'node:net';
import dnsPacket, {
  type Answer,
  type DecodedPacket,
  type OptAnswer,
  type Question,
} from 'dns-packet';
import { Counter, type Registry as MetricsRegistry } from 'prom-client';
import type { Discovery } from '../core/discovery.js';
import { errors } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { DnsAnswerBuilder, RCODE } from './dns-answer.js';
import { encodeResponse, plainQuestionBytes } from './dns-wire.js';
import { forwardQuery, parseRecursor, type Recursor } from './dns-forwarder.js';
import { DnsNameRouter } from './dns-name-router.js';
import { DEFAULT_DNS_OPTIONS, dnsOptionsSchema, type DnsOptions } from './options.js';

export interface DnsServerOptions {
  readonly discovery: Discovery;
  /** Validated once here; defaults fill what is left out. */
  readonly options?: Partial<DnsOptions>;
  /** The agent's datacenter (`<svc>.service.<dc>.<domain>`). */
  readonly datacenter?: string;
  readonly logger?: Logger;
  readonly metrics?: MetricsRegistry;
  /** [0, 1) for the weighted shuffle; seeded in tests. */
  readonly random?: () => number;
}

/** Where the server listens (UDP and TCP share the port). */
export interface DnsAddress {
  readonly host: string;
  readonly port: number;
}

export type DnsTransport = 'udp' | 'tcp';

// Header flag bits (RFC 1035 §4.1.1).
const FLAG_QR = 0x8000;
const FLAG_AA = 0x0400;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;
const OPCODE_MASK = 0x7800;
/** RFC 1035 §4.2.1: a UDP message without EDNS0 is at most 512 bytes. */
const CLASSIC_UDP_BYTES = 512;
/** The largest UDP payload over IPv4 (65535 - 8 UDP - 20 IP header bytes). */
const MAX_UDP_BYTES = 65_507;
/** RFC 1035 §4.2.2: the 2-byte length prefix bounds a TCP message. */
const MAX_TCP_BYTES = 65_535;
/** Queries one TCP connection may have waiting; more is abuse, and the connection is closed. */
const MAX_TCP_PIPELINE = 64;
/** Answers one TCP client may leave unread before the connection is closed. */
const MAX_TCP_UNREAD_BYTES = 1 << 20;
/** RFC 6891 §7: BADVERS is extended rcode 16, carried as 1 in the OPT's upper 8 bits. */
const BADVERS_UPPER = 1;
/** Names we echo and answer: labels of printable ASCII, at most 63 bytes (RFC 1035 §2.3.4). */
const SAFE_NAME = /^[\x21-\x2d\x2f-\x7e]{1,63}(?:\.[\x21-\x2d\x2f-\x7e]{1,63})*$/;
const BIND_ATTEMPTS = 8;

const queryChannel = channel('meshwork:dns:query');

/** What one message asks, after decoding. */
interface Request {
  readonly raw: Buffer;
  readonly packet: DecodedPacket;
  readonly question: Question;
  readonly opt: OptAnswer | undefined;
}

/** The DNS interface. Create with {@link createDnsServer}, then `await listen()`. */
export class DnsServer {
  readonly options: DnsOptions;
  readonly #discovery: Discovery;
  readonly #log: Logger;
  readonly #router: DnsNameRouter;
  readonly #datacenter: string;
  readonly #random: (() => number) | undefined;
  readonly #recursors: readonly Recursor[];
  #builder: DnsAnswerBuilder;
  #udp: UdpSocket | undefined;
  #tcp: Server | undefined;
  readonly #connections = new Set<Socket>();
  #address: DnsAddress | undefined;
  /** Our OPT record (RFC 6891 §6.1.2), one object so its bytes are encoded once. */
  readonly #opt: OptAnswer;
  /** Answers by transport (udp 0-15, tcp 16-31) and rcode (the low 4 bits). */
  readonly #counts = new Float64Array(32);
  readonly #truncated: Counter | undefined;
  readonly #tcpRejected: Counter | undefined;

  constructor(o: DnsServerOptions) {
    const parsed = dnsOptionsSchema.safeParse({ ...DEFAULT_DNS_OPTIONS, ...o.options });
    if (!parsed.success) {
      throw errors.configInvalid(
        parsed.error.issues.map((i) => `dns.${i.path.join('.')}: ${i.message}`),
      );
    }
    this.options = Object.freeze(parsed.data);
    this.#discovery = o.discovery;
    this.#log = (o.logger ?? silentLogger).child({ component: 'dns' });
    this.#datacenter = o.datacenter ?? 'dc1';
    this.#random = o.random;
    const domains = [this.options.domain];
    if (this.options.altDomain !== '' && this.options.altDomain !== this.options.domain)
      domains.push(this.options.altDomain);
    this.#router = new DnsNameRouter({ domains, datacenter: this.#datacenter });
    this.#recursors = this.options.recursors.map(parseRecursor);
    this.#opt = {
      type: 'OPT',
      name: '.',
      udpPayloadSize: this.options.maxUdpPayloadBytes,
      extendedRcode: 0,
      ednsVersion: 0,
      flags: 0,
      flag_do: false,
      options: [],
    };
    this.#builder = this.#newBuilder('127.0.0.1');
    if (o.metrics !== undefined) {
      const counts = this.#counts;
      new Counter({
        name: 'meshwork_dns_queries_total',
        help: 'DNS queries answered, by transport and rcode',
        labelNames: ['transport', 'rcode'],
        registers: [o.metrics],
        // Counted in a plain array on the hot path; prom-client reads it at scrape time.
        collect() {
          this.reset();
          counts.forEach((n, slot) => {
            if (n === 0) return;
            const transport = slot < 16 ? 'udp' : 'tcp';
            this.inc({ transport, rcode: RCODE_NAMES[slot % 16] ?? String(slot % 16) }, n);
          });
        },
      });
      this.#truncated = new Counter({
        name: 'meshwork_dns_truncated_total',
        help: 'DNS answers cut to fit the UDP size (TC set)',
        registers: [o.metrics],
      });
      this.#tcpRejected = new Counter({
        name: 'meshwork_dns_tcp_rejected_total',
        help: 'DNS TCP connections refused or closed: connection limit or pipeline abuse',
        registers: [o.metrics],
      });
    }
  }

  /** The bound address (after listen()). */
  get address(): DnsAddress {
    if (this.#address === undefined) throw new Error('DNS server is not listening');
    return this.#address;
  }

  /** Binds UDP, then TCP on the same port (with port 0, retries until both get one). */
  async listen(): Promise<DnsAddress> {
    const listen = this.options.listen;
    const sep = listen.lastIndexOf(':');
    const host = await resolveListenHost(listen.slice(0, sep).replace(/^\[|\]$/g, ''));
    const wanted = Number(listen.slice(sep + 1));
    for (let attempt = 1; ; attempt++) {
      const family = isIPv6(host) ? 6 : 4;
      const udp = createSocket({ type: `udp${family}`, lookup: literalLookup(family) });
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(wanted, host, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      const { port, address: boundHost } = udp.address();
      const tcp = createServer({ pauseOnConnect: false }, (s) => this.#onConnection(s));
      tcp.maxConnections = this.options.maxTcpConnections;
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen(port, boundHost, () => {
            tcp.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        udp.close();
        // Port 0 gave a UDP port whose TCP twin is taken: try another.
        if (wanted === 0 && attempt < BIND_ATTEMPTS) continue;
        throw err;
      }
      udp.on('message', (msg, rinfo) => this.#onDatagram(udp, msg, rinfo.port, rinfo.address));
      udp.on('error', (err) => this.#log.error({ err }, 'DNS UDP socket error'));
      tcp.on('drop', () => this.#tcpRejected?.inc());
      this.#udp = udp;
      this.#tcp = tcp;
      const nsHost = boundHost === '0.0.0.0' ? '127.0.0.1' : boundHost === '::' ? '::1' : boundHost;
      this.#builder = this.#newBuilder(nsHost);
      this.#address = { host: boundHost, port };
      this.#log.info({ host, port, domain: this.options.domain }, 'DNS listening (udp+tcp)');
      return this.#address;
    }
  }

  /** Stops both listeners and closes open TCP connections. */
  async close(): Promise<void> {
    const udp = this.#udp;
    const tcp = this.#tcp;
    this.#udp = undefined;
    this.#tcp = undefined;
    for (const s of this.#connections) s.destroy();
    await Promise.all([
      udp === undefined ? undefined : new Promise<void>((r) => udp.close(() => r())),
      tcp === undefined ? undefined : new Promise<void>((r) => tcp.close(() => r())),
    ]);
  }

  /**
   * The answer to one message, or undefined when it gets none (shorter than a header, or a
   * response rather than a query). The error boundary of the data plane: never throws.
   */
  async respond(msg: Buffer, transport: DnsTransport): Promise<Buffer | undefined> {
    return this.#answer(msg, transport);
  }

  /** {@link respond}, synchronous unless the query is forwarded (the UDP hot path). */
  #answer(msg: Buffer, transport: DnsTransport): Buffer | undefined | Promise<Buffer | undefined> {
    try {
      const out = this.#respond(msg, transport);
      return out instanceof Promise
        ? out.catch((err: unknown) => this.#failure(msg, transport, err))
        : out;
    } catch (err) {
      return this.#failure(msg, transport, err);
    }
  }

  #newBuilder(nsAddress: string): DnsAnswerBuilder {
    return new DnsAnswerBuilder({
      discovery: this.#discovery,
      options: this.options,
      datacenter: this.#datacenter,
      nsAddress,
      ...(this.#random === undefined ? {} : { random: this.#random }),
    });
  }

  #respond(msg: Buffer, transport: DnsTransport): Buffer | undefined | Promise<Buffer | undefined> {
    // Without a full header there is no id to answer to; a response is never answered (no
    // loops between two servers).
    if (msg.length < 12 || (msg.readUInt16BE(2) & FLAG_QR) !== 0) return undefined;
    const request = decodeRequest(msg);
    if (request === undefined) return this.#failure(msg, transport, MALFORMED);
    const { packet, question, opt } = request;
    const opcode = (packet.flags ?? 0) & OPCODE_MASK;
    if (opcode !== 0) return this.#reply(request, transport, RCODE.NOTIMP);
    if (opt !== undefined && opt.ednsVersion > 0) {
      return this.#reply(request, transport, RCODE.NOERROR, { extendedRcode: BADVERS_UPPER });
    }
    const safe = question.name === '.' || SAFE_NAME.test(question.name);
    const forwarding = this.#recursors.length > 0;
    // A question we could not echo byte for byte (odd labels, an unknown class) gets the header.
    if (!safe && !forwarding) return this.#bare(msg, transport, RCODE.REFUSED);
    if (question.class !== 'IN' && question.class !== 'ANY') {
      return this.#bare(msg, transport, RCODE.REFUSED);
    }
    const route = safe ? this.#router.route(question.name) : undefined;
    if (route === undefined || route.kind === 'outside') {
      return forwarding
        ? this.#forward(request, transport)
        : this.#reply(request, transport, RCODE.REFUSED);
    }
    const answer = this.#builder.build(route, question.name, question.type);
    // Reverse names are ours only where we know the address; upstream may know the rest.
    if (route.kind === 'ptr' && answer.rcode === RCODE.NXDOMAIN && forwarding) {
      return this.#forward(request, transport);
    }
    return this.#reply(request, transport, answer.rcode, {
      answers: answer.answers,
      authorities: answer.authorities,
      additionals: answer.additionals,
      authoritative: true,
    });
  }

  async #forward(request: Request, transport: DnsTransport): Promise<Buffer | undefined> {
    const upstream = await forwardQuery(
      request.raw,
      this.#recursors,
      this.options.recursorTimeoutMs,
      transport,
    );
    if (upstream === undefined) return this.#reply(request, transport, RCODE.SERVFAIL);
    this.#count(transport, upstream.readUInt16BE(2) & 0xf);
    return upstream;
  }

  /** Encodes a response to `request`, fitted to the transport's size budget. */
  #reply(
    request: Request,
    transport: DnsTransport,
    rcode: number,
    body: {
      answers?: Answer[];
      authorities?: Answer[];
      additionals?: Answer[];
      authoritative?: boolean;
      extendedRcode?: number;
    } = {},
  ): Buffer {
    const { packet, question, opt } = request;
    const recursion = this.#recursors.length > 0;
    const flags =
      rcode |
      ((packet.flags ?? 0) & (OPCODE_MASK | FLAG_RD)) |
      (recursion ? FLAG_RA : 0) |
      (body.authoritative === true ? FLAG_AA : 0);
    let budget = transport === 'tcp' ? MAX_TCP_BYTES : CLASSIC_UDP_BYTES;
    let optRecord: Answer | undefined;
    if (opt !== undefined) {
      // RFC 6891 §6.2.3-5: sizes under 512 mean 512; we cap what we send at our own maximum.
      const size = Math.min(
        Math.max(opt.udpPayloadSize, CLASSIC_UDP_BYTES),
        this.options.maxUdpPayloadBytes,
        MAX_UDP_BYTES,
      );
      if (transport === 'udp') budget = size;
      optRecord =
        body.extendedRcode === undefined
          ? this.#opt
          : { ...this.#opt, extendedRcode: body.extendedRcode };
    }
    const { bytes, truncated } = encodeResponse(
      {
        id: packet.id ?? 0,
        flags,
        question,
        ...questionBytesOf(request),
        answers: body.answers ?? [],
        authorities: body.authorities ?? [],
        additionals: body.additionals ?? [],
        ...(optRecord === undefined ? {} : { opt: optRecord }),
      },
      budget,
    );
    if (truncated) this.#truncated?.inc();
    this.#count(transport, rcode);
    if (queryChannel.hasSubscribers) {
      queryChannel.publish({ name: question.name, type: question.type, transport, rcode });
    }
    return bytes;
  }

  /**
   * The one place errors become rcodes: a message that does not decode is FORMERR; anything
   * else is a bug, logged and answered SERVFAIL. The reply is the request's header (id, opcode,
   * RD) with no sections, which is always well-formed whatever the request held.
   */
  #failure(msg: Buffer, transport: DnsTransport, err: unknown): Buffer | undefined {
    const rcode = err === MALFORMED ? RCODE.FORMERR : RCODE.SERVFAIL;
    if (rcode === RCODE.SERVFAIL) this.#log.error({ err }, 'DNS answer failed');
    return this.#bare(msg, transport, rcode);
  }

  /** A response of the request's header only (id, opcode, RD) and `rcode`. */
  #bare(msg: Buffer, transport: DnsTransport, rcode: number): Buffer | undefined {
    if (msg.length < 12) return undefined;
    const out = Buffer.alloc(12);
    out.writeUInt16BE(msg.readUInt16BE(0), 0);
    out.writeUInt16BE(FLAG_QR | (msg.readUInt16BE(2) & (OPCODE_MASK | FLAG_RD)) | rcode, 2);
    this.#count(transport, rcode);
    return out;
  }

  #count(transport: DnsTransport, rcode: number): void {
    const slot = (transport === 'udp' ? 0 : 16) + (rcode & 0xf);
    this.#counts[slot] = (this.#counts[slot] as number) + 1;
  }

  #onDatagram(udp: UdpSocket, msg: Buffer, port: number, address: string): void {
    const send = (out: Buffer | undefined): void => {
      if (out !== undefined && this.#udp === udp) udp.send(out, port, address);
    };
    const out = this.#answer(msg, 'udp');
    if (out instanceof Promise) void out.then(send);
    else send(out);
  }

  /** RFC 7766: 2-byte length framing, several queries per connection, answered in order. */
  #onConnection(socket: Socket): void {
    this.#connections.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(this.options.tcpIdleTimeoutMs, () => socket.destroy());
    let pending: Buffer = Buffer.alloc(0);
    let queued = 0;
    let chain: Promise<void> = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) break;
        const frame = pending.subarray(2, 2 + length);
        pending = pending.subarray(2 + length);
        if (++queued > MAX_TCP_PIPELINE) {
          this.#tcpRejected?.inc();
          this.#log.warn({ remote: socket.remoteAddress }, 'DNS TCP pipeline too deep, closing');
          socket.destroy();
          return;
        }
        chain = chain.then(async () => {
          const out = await this.respond(Buffer.from(frame), 'tcp');
          queued--;
          if (out === undefined || socket.destroyed) return;
          if (socket.writableLength > MAX_TCP_UNREAD_BYTES) {
            // A client that sends queries but does not read the answers.
            this.#tcpRejected?.inc();
            socket.destroy();
            return;
          }
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(out.length, 0);
          socket.write(Buffer.concat([prefix, out]));
        });
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#connections.delete(socket));
  }
}

const MALFORMED = Symbol('malformed DNS message');

/** The IP to bind for a listen host: itself, or what a hostname resolves to (IPv4 first). */
async function resolveListenHost(host: string): Promise<string> {
  if (isIP(host) !== 0) return host;
  try {
    return (await lookup(host, { family: 4 })).address;
  } catch {
    return (await lookup(host, { family: 6 })).address;
  }
}

/**
 * We only ever send to the IP a datagram came from, so the socket's name lookup is the identity
 * (for the socket's own family). Node's default goes through dns.lookup and a nextTick per send,
 * on the hottest path.
 */
function literalLookup(family: 4 | 6) {
  return (
    address: string,
    _options: unknown,
    callback: (err: Error | null, address: string, family: number) => void,
  ): void => callback(null, address, family);
}

const RCODE_NAMES: Record<number, string> = {
  0: 'NOERROR',
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
};

/**
 * Decodes a query; undefined when it is not one we can answer (RFC 9619: exactly one
 * question; RFC 6891 §6.1.1: at most one OPT).
 */
function decodeRequest(raw: Buffer): Request | undefined {
  let packet: DecodedPacket;
  try {
    packet = dnsPacket.decode(raw);
  } catch {
    return undefined;
  }
  const question = packet.questions?.length === 1 ? packet.questions[0] : undefined;
  if (question === undefined) return undefined;
  const opts = (packet.additionals ?? []).filter((a) => a.type === 'OPT');
  if (opts.length > 1) return undefined;
  return { raw, packet, question, opt: opts[0] as Request['opt'] };
}

/** The query's own question bytes to echo, when they are plain (see plainQuestionBytes). */
function questionBytesOf(request: Request): { questionBytes?: Buffer } {
  const bytes = plainQuestionBytes(request.raw);
  return bytes === undefined ? {} : { questionBytes: bytes };
}

/** Validates the options once and builds the server (not listening yet). */
export function createDnsServer(options: DnsServerOptions): DnsServer {
  return new DnsServer(options);
}
