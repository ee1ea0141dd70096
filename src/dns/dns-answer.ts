/**
 * @module DnsAnswerBuilder: the records for one routed question (A, AAAA, CNAME, SRV, TXT, PTR,
 * SOA, NS), health- and weight-aware, and the fitting of an answer into a size budget.
 */
import { isIP } from 'node:net';
import type { Answer } from 'dns-packet';
import type { DiscoveredInstance, Discovery } from '../core/discovery.js';
import { INTERNAL_META_PREFIX } from '../core/types.js';
import { addressHex, canonicalIPv6, type DnsRoute } from './dns-name-router.js';
import type { DnsOptions } from './options.js';

/** Response codes we send (RFC 1035 §4.1.1, RFC 6891 §9 for BADVERS's low bits). */
export const RCODE = Object.freeze({
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
});

/** What a question gets: an rcode and the three record sections. */
export interface DnsAnswer {
  readonly rcode: number;
  readonly answers: Answer[];
  readonly authorities: Answer[];
  readonly additionals: Answer[];
}

export interface DnsAnswerBuilderOptions {
  readonly discovery: Discovery;
  readonly options: DnsOptions;
  readonly datacenter: string;
  /** The address `ns.<domain>` resolves to (the DNS listener's host). */
  readonly nsAddress: string;
  /** [0, 1): seeded in tests. */
  readonly random?: () => number;
}

interface CachedHealthy {
  readonly index: number;
  readonly instances: readonly DiscoveredInstance[];
  /**
   * Records already built at this index, per (type, name asked, port) and instance: the same
   * objects come back while nothing changes, so their wire bytes are encoded once (dns-wire).
   */
  readonly records: Map<string, Map<DiscoveredInstance, unknown>>;
}

/** Distinct (type, name, port) record sets kept per service and index (names vary in case). */
const MAX_RECORD_SETS = 32;

const SOA_REFRESH_S = 3600;
const SOA_RETRY_S = 600;
const SOA_EXPIRE_S = 86_400;
/** RFC 1035 §3.3.14: one character-string holds at most 255 bytes. */
const TXT_CHUNK_BYTES = 255;

/** Builds answers; keeps, per service, the healthy instances of the service's current index. */
export class DnsAnswerBuilder {
  readonly #discovery: Discovery;
  readonly #options: DnsOptions;
  readonly #datacenter: string;
  readonly #nsAddress: string;
  readonly #random: () => number;
  readonly #healthy = new Map<string, CachedHealthy>();
  readonly #ttls = new Map<string, number>();

  constructor(o: DnsAnswerBuilderOptions) {
    this.#discovery = o.discovery;
    this.#options = o.options;
    this.#datacenter = o.datacenter;
    this.#nsAddress = o.nsAddress;
    this.#random = o.random ?? Math.random;
  }

  /** The records for `route`; `name` is the question name as asked (answers echo it). */
  build(route: DnsRoute, name: string, type: string): DnsAnswer {
    switch (route.kind) {
      case 'service':
        return this.#service(route, name, type);
      case 'node': {
        const node = this.#discovery.node(route.node);
        if (node === undefined) return this.#negative(RCODE.NXDOMAIN, route.domain);
        return this.#addressRecords(name, type, node.address, this.#nodeTtlS(), route.domain);
      }
      case 'addr':
        return this.#addressRecords(name, type, route.address, this.#nodeTtlS(), route.domain);
      case 'ns':
        return this.#addressRecords(name, type, this.#nsAddress, this.#nodeTtlS(), route.domain);
      case 'apex':
        return this.#apex(name, type, route.domain);
      case 'ptr':
        return this.#ptr(name, type, route.address);
      case 'unknown':
        return this.#negative(RCODE.NXDOMAIN, route.domain);
      case 'outside':
        return { rcode: RCODE.REFUSED, answers: [], authorities: [], additionals: [] };
    }
  }

  /** The instances DNS may hand out: never critical, maintenance or starting. */
  healthy(service: string): readonly DiscoveredInstance[] {
    return this.#entry(service)?.instances ?? [];
  }

  #entry(service: string): CachedHealthy | undefined {
    const index = this.#discovery.serviceIndex(service);
    const cached = this.#healthy.get(service);
    if (cached !== undefined && cached.index === index) return cached;
    const instances = this.#discovery
      .instances(service)
      .filter(
        (i) => i.status === 'passing' || (i.status === 'warning' && !this.#options.onlyPassing),
      );
    if (instances.length === 0) {
      this.#healthy.delete(service);
      return undefined;
    }
    const entry = { index, instances, records: new Map() };
    this.#healthy.set(service, entry);
    return entry;
  }

  /** The record set `key` of an entry, created empty on first use. */
  #records<T>(entry: CachedHealthy, key: string): Map<DiscoveredInstance, T> {
    let set = entry.records.get(key);
    if (set === undefined) {
      if (entry.records.size >= MAX_RECORD_SETS) entry.records.clear();
      set = new Map();
      entry.records.set(key, set);
    }
    return set as Map<DiscoveredInstance, T>;
  }

  /** TTL in seconds of a service's records: exact key, else the longest `prefix*`, else default. */
  serviceTtlS(service: string): number {
    let ttl = this.#ttls.get(service);
    if (ttl !== undefined) return ttl;
    const map = this.#options.serviceTtlMs;
    let ms = map[service];
    if (ms === undefined) {
      let best = -1;
      for (const [key, value] of Object.entries(map)) {
        if (key.endsWith('*') && service.startsWith(key.slice(0, -1)) && key.length > best) {
          best = key.length;
          ms = value;
        }
      }
    }
    ttl = Math.floor((ms ?? this.#options.defaultTtlMs) / 1000);
    // Service names are validated labels, so the map stays bounded by the catalog's services.
    this.#ttls.set(service, ttl);
    return ttl;
  }

  /** The SOA record of `domain` (serial: the catalog index, so it moves with every change). */
  soa(domain: string): Answer {
    const minimum = Math.floor(this.#options.soaMinTtlMs / 1000);
    return {
      type: 'SOA',
      name: domain,
      ttl: minimum,
      data: {
        mname: `ns.${domain}`,
        rname: `hostmaster.${domain}`,
        serial: this.#discovery.index >>> 0,
        refresh: SOA_REFRESH_S,
        retry: SOA_RETRY_S,
        expire: SOA_EXPIRE_S,
        minimum,
      },
    };
  }

  #service(route: Extract<DnsRoute, { kind: 'service' }>, name: string, type: string): DnsAnswer {
    const { tag, portName, domain } = route;
    const entry = this.#entry(route.service);
    if (entry === undefined) return this.#negative(RCODE.NXDOMAIN, domain);
    let instances = entry.instances;
    if (tag !== undefined) {
      const lower = tag.toLowerCase();
      instances = instances.filter((i) => i.tags.some((t) => t.toLowerCase() === lower));
    }
    if (portName !== undefined)
      instances = instances.filter((i) => i.ports[portName] !== undefined);
    if (instances.length === 0) return this.#negative(RCODE.NXDOMAIN, domain);
    const ordered = weightedOrder(instances, this.#random);
    const limit = this.#options.answerLimit;
    const picked = limit > 0 && ordered.length > limit ? ordered.slice(0, limit) : ordered;
    const ttl = this.serviceTtlS(route.service);
    const key = `${type} ${name} ${portName ?? ''}`;
    switch (type) {
      case 'A':
      case 'AAAA':
      case 'ANY':
      case 'CNAME':
        return this.#instanceAddresses(name, type, picked, ttl, domain, this.#records(entry, key));
      case 'SRV':
        return this.#srv(name, picked, ttl, domain, portName, this.#records(entry, key));
      case 'TXT': {
        const records = this.#records<Answer>(entry, key);
        return {
          rcode: RCODE.NOERROR,
          answers: picked.map((i) =>
            memo(records, i, () => ({ type: 'TXT', name, ttl, data: txtOf(i) })),
          ),
          authorities: [],
          additionals: [],
        };
      }
      default:
        return this.#negative(RCODE.NOERROR, domain);
    }
  }

  /**
   * A/AAAA of the instances' IP addresses, in weighted order, without duplicates. Hostname
   * addresses become one CNAME (RFC 1034 §3.6.2: a name with a CNAME has no other data), used
   * only when no instance has an IP of the asked family (as Consul does); ANY and CNAME ask for
   * both families, so a CNAME question gets the CNAME exactly when ANY does.
   */
  #instanceAddresses(
    name: string,
    type: string,
    instances: readonly DiscoveredInstance[],
    ttl: number,
    domain: string,
    records: Map<DiscoveredInstance, Answer | null>,
  ): DnsAnswer {
    const answers: Answer[] = [];
    const seen = new Set<string>();
    let hostname: string | undefined;
    let addressed = false;
    for (const i of instances) {
      const record = memo(records, i, (): Answer | null => {
        const family = isIP(i.address);
        const recordType = family === 4 ? 'A' : family === 6 ? 'AAAA' : undefined;
        if (recordType === undefined || (type !== 'ANY' && type !== recordType)) return null;
        return { type: recordType, name, ttl, data: i.address };
      });
      if (record === null) {
        if (isIP(i.address) === 0) hostname ??= i.address;
        else if (type === 'CNAME') addressed = true;
        continue;
      }
      if (seen.has(i.address)) continue;
      seen.add(i.address);
      answers.push(record);
    }
    if (answers.length === 0 && !addressed && hostname !== undefined) {
      answers.push({ type: 'CNAME', name, ttl, data: hostname.replace(/\.$/, '') });
    }
    if (answers.length === 0) return this.#negative(RCODE.NOERROR, domain);
    return { rcode: RCODE.NOERROR, answers, authorities: [], additionals: [] };
  }

  /**
   * RFC 2782 SRV: priority and weight from the instance (weight: `weights.passing`, or
   * `weights.warning` while it warns); targets are `<hex-ip>.addr.<dc>.<domain>` with the
   * address in Additional, or the instance's hostname.
   */
  #srv(
    name: string,
    instances: readonly DiscoveredInstance[],
    ttl: number,
    domain: string,
    portName: string | undefined,
    records: Map<DiscoveredInstance, { srv: Answer; key: string; glue: Answer | undefined }>,
  ): DnsAnswer {
    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    const seen = new Set<string>();
    for (const i of instances) {
      const r = memo(records, i, () => {
        const port = portName === undefined ? i.port : (i.ports[portName] as number);
        const family = isIP(i.address);
        const target =
          family === 0
            ? i.address.replace(/\.$/, '')
            : `${addressHex(i.address)}.addr.${this.#datacenter}.${domain}`;
        const srv: Answer = {
          type: 'SRV',
          name,
          ttl,
          data: { priority: i.priority, weight: weightOf(i), port, target },
        };
        const glue: Answer | undefined =
          family === 0
            ? undefined
            : {
                type: family === 4 ? 'A' : 'AAAA',
                name: target,
                ttl,
                data: family === 4 ? i.address : canonicalIPv6(i.address),
              };
        return { srv, key: `${target}:${port}`, glue };
      });
      if (seen.has(r.key)) continue;
      seen.add(r.key);
      answers.push(r.srv);
      // One glue record per SRV answer, repeats included (as Consul does): HAProxy pairs each
      // Additional record with one SRV record, so instances sharing an IP each need their own,
      // or their server-template slots get no address. RFC 2181 §5 says servers should
      // suppress duplicate RRs; we keep these few for HAProxy, and a resolver merges them.
      if (r.glue !== undefined) additionals.push(r.glue);
    }
    return { rcode: RCODE.NOERROR, answers, authorities: [], additionals };
  }

  /** A/AAAA (or CNAME for a hostname) of one address: nodes, `.addr.` names, `ns.`. */
  #addressRecords(
    name: string,
    type: string,
    address: string,
    ttl: number,
    domain: string,
  ): DnsAnswer {
    const family = isIP(address);
    const recordType = family === 4 ? 'A' : family === 6 ? 'AAAA' : 'CNAME';
    if (
      type !== recordType &&
      type !== 'ANY' &&
      !(family === 0 && (type === 'A' || type === 'AAAA'))
    )
      return this.#negative(RCODE.NOERROR, domain);
    const data = family === 0 ? address.replace(/\.$/, '') : address;
    return {
      rcode: RCODE.NOERROR,
      answers: [{ type: recordType, name, ttl, data }],
      authorities: [],
      additionals: [],
    };
  }

  #apex(name: string, type: string, domain: string): DnsAnswer {
    const ns = `ns.${domain}`;
    const glue: Answer = {
      type: isIP(this.#nsAddress) === 6 ? 'AAAA' : 'A',
      name: ns,
      ttl: this.#nodeTtlS(),
      data: this.#nsAddress,
    };
    const nsRecord: Answer = { type: 'NS', name, ttl: this.#nodeTtlS(), data: ns };
    const soa = { ...this.soa(domain), name };
    switch (type) {
      case 'SOA':
        return { rcode: RCODE.NOERROR, answers: [soa], authorities: [], additionals: [] };
      case 'NS':
        return { rcode: RCODE.NOERROR, answers: [nsRecord], authorities: [], additionals: [glue] };
      case 'ANY':
        return {
          rcode: RCODE.NOERROR,
          answers: [soa, nsRecord],
          authorities: [],
          additionals: [glue],
        };
      default:
        return this.#negative(RCODE.NOERROR, domain);
    }
  }

  /** PTR: the services with a healthy instance at the address, and nodes at it. */
  #ptr(name: string, type: string, address: string): DnsAnswer {
    const domain = this.#options.domain;
    const targets = new Set<string>();
    for (const n of this.#discovery.nodes()) {
      // Node names allow 128 characters; a label over 63 bytes cannot go on the wire.
      if (sameAddress(n.address, address) && n.name.split('.').every((l) => l.length <= 63))
        targets.add(`${n.name}.node.${this.#datacenter}.${domain}`);
    }
    for (const i of this.#discovery.instancesByAddress(address)) {
      if (this.healthy(i.service).some((h) => h.id === i.id))
        targets.add(`${i.service}.service.${this.#datacenter}.${domain}`);
    }
    if (targets.size === 0) {
      return { rcode: RCODE.NXDOMAIN, answers: [], authorities: [], additionals: [] };
    }
    if (type !== 'PTR' && type !== 'ANY') return this.#negative(RCODE.NOERROR, domain);
    const ttl = this.#nodeTtlS();
    return {
      rcode: RCODE.NOERROR,
      answers: [...targets].map((data) => ({ type: 'PTR', name, ttl, data })),
      authorities: [],
      additionals: [],
    };
  }

  /** NXDOMAIN or NODATA (NOERROR, no answers), with the SOA in Authority (RFC 2308 §3). */
  #negative(rcode: number, domain: string): DnsAnswer {
    return { rcode, answers: [], authorities: [this.soa(domain)], additionals: [] };
  }

  #nodeTtlS(): number {
    return Math.floor(this.#options.nodeTtlMs / 1000);
  }
}

/** The weight DNS gives an instance: its passing weight, or its warning weight while warning. */
export function weightOf(i: DiscoveredInstance): number {
  return i.status === 'warning' ? i.weights.warning : i.weights.passing;
}

/**
 * Instances by priority (lowest first, RFC 2782), and within a priority a random order weighted
 * by {@link weightOf}: each instance is first with probability weight / sum of weights
 * (Efraimidis-Spirakis keys u^(1/w)). Weight 0 goes last, in random order (RFC 2782: "a very
 * small chance of being selected").
 */
export function weightedOrder(
  instances: readonly DiscoveredInstance[],
  random: () => number,
): DiscoveredInstance[] {
  const keyed = instances.map((i) => {
    const w = weightOf(i);
    const u = random();
    // log(u)/w orders the same as u^(1/w) and keeps precision for large weights.
    return {
      i,
      p: i.priority,
      key: w > 0 ? Math.log(u === 0 ? Number.MIN_VALUE : u) / w : -Infinity,
      tie: u,
    };
  });
  keyed.sort((a, b) => a.p - b.p || b.key - a.key || b.tie - a.tie);
  return keyed.map((k) => k.i);
}

/** The value kept for `key`, made on first use. */
function memo<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) {
    v = make();
    map.set(key, v);
  }
  return v;
}

/**
 * `instance=<id>` and `key=value` per meta pair but Meshwork's own markers, as UTF-8 strings of
 * at most 255 bytes.
 */
function txtOf(i: DiscoveredInstance): (string | Buffer)[] {
  const out: (string | Buffer)[] = [];
  const attrs = [`instance=${i.id}`];
  for (const [k, v] of Object.entries(i.meta))
    if (!k.startsWith(INTERNAL_META_PREFIX)) attrs.push(`${k}=${v}`);
  for (const attr of attrs) {
    const bytes = Buffer.from(attr);
    if (bytes.length <= TXT_CHUNK_BYTES) out.push(attr);
    // Longer ones continue in the next string, cut at byte boundaries (a character may split).
    else
      for (let at = 0; at < bytes.length; at += TXT_CHUNK_BYTES)
        out.push(bytes.subarray(at, at + TXT_CHUNK_BYTES));
  }
  return out;
}

function sameAddress(a: string, b: string): boolean {
  return a === b || (a.includes(':') && canonicalIPv6(a) === canonicalIPv6(b));
}
