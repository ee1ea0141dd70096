/** @module DNS options: one zod schema for the file, env and flags, and DEFAULT_DNS_OPTIONS. */
import { z } from 'zod';
import { hostPortSchema } from '../protocol/host-port.js';

const DOMAIN =
  /^(?=.{1,200}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** A domain as written (`consul`, `consul.`, `Mesh.Example.`), kept lowercase without the dot. */
const domain = z
  .string()
  .transform((d) => d.toLowerCase().replace(/\.$/, ''))
  .refine((d) => DOMAIN.test(d), 'must be a DNS name such as "consul" or "meshwork.example"');

const listen = hostPortSchema('127.0.0.1:8600', { orOff: true });

/** DNS TTLs are whole seconds (RFC 1035 §3.2.1); the option keeps the project's ms unit. */
const ttlMs = z
  .number()
  .int()
  .min(0)
  .max(604_800_000, 'at most 7 days')
  .refine((ms) => ms % 1000 === 0, 'must be whole seconds (a multiple of 1000)');

/** `host`, `host:port` or `[v6]:port` of an upstream resolver; port 53 when omitted. */
const recursor = z
  .string()
  .regex(
    /^(\[[0-9a-fA-F:.]+\]|[0-9.]+|[0-9a-fA-F:]+)(:\d{1,5})?$/,
    'must be an IP address with an optional :port (e.g. 1.1.1.1 or 127.0.0.1:5353)',
  );

export const dnsOptionsSchema = z
  .object({
    /** UDP and TCP listen address (both on the same port), or "off". */
    listen,
    /** The domain answered, e.g. `consul` for `web.service.consul`. */
    domain,
    /** A second domain answering the same names (e.g. `meshwork`); "" for none. */
    altDomain: z.union([z.literal(''), domain]),
    /** Leave out `warning` instances too (critical and maintenance are always left out). */
    onlyPassing: z.boolean(),
    /** At most this many instances per answer, picked by weight (0 = no limit). */
    answerLimit: z.number().int().min(0).max(4096),
    /** TTL of service records unless `serviceTtlMs` names the service. */
    defaultTtlMs: ttlMs,
    /** TTL per service: exact name, or a prefix ending in `*` (longest wins; `*` = all). */
    serviceTtlMs: z.record(z.string().regex(/^[a-z0-9-]*\*?$/, 'a service name or prefix*'), ttlMs),
    /** TTL of node, addr and PTR records. */
    nodeTtlMs: ttlMs,
    /** SOA minimum: how long resolvers may cache a negative answer (RFC 2308). */
    soaMinTtlMs: ttlMs,
    /** Upstream resolvers for names outside our domains (tried in order); none = REFUSED. */
    recursors: z.array(recursor).max(8),
    recursorTimeoutMs: z.number().int().min(1).max(60_000),
    /** Largest UDP answer, whatever a client's EDNS0 buffer size says (RFC 6891 §6.2.5). */
    maxUdpPayloadBytes: z.number().int().min(512).max(65_535),
    /** A TCP connection with no query for this long is closed (RFC 7766 §6.2.3). */
    tcpIdleTimeoutMs: z.number().int().min(100).max(600_000),
    maxTcpConnections: z.number().int().min(1).max(100_000),
  })
  .strict();

export type DnsOptions = Readonly<z.output<typeof dnsOptionsSchema>>;

export const DEFAULT_DNS_OPTIONS: DnsOptions = Object.freeze({
  listen: '127.0.0.1:8600',
  domain: 'consul',
  altDomain: '',
  onlyPassing: false,
  answerLimit: 0,
  defaultTtlMs: 0,
  serviceTtlMs: Object.freeze({}),
  nodeTtlMs: 0,
  soaMinTtlMs: 0,
  recursors: Object.freeze([]) as unknown as string[],
  recursorTimeoutMs: 2_000,
  maxUdpPayloadBytes: 4_096,
  tcpIdleTimeoutMs: 10_000,
  maxTcpConnections: 512,
});
