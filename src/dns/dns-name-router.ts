/**
 * @module DnsNameRouter: turns a question name into what it asks for (a service, a node, an
 * address, the zone apex), following Consul's names (shared/docs/consul-api.md §6.1).
 */
import { isIPv6 } from 'node:net';

/** What a question name asks for. `domain` is the served domain it fell under. */
export type DnsRoute =
  /** `[tag.]svc.service`, `_svc._tag.service`, `_port._tcp.svc.service` (tag/port optional). */
  | {
      readonly kind: 'service';
      readonly domain: string;
      readonly service: string;
      readonly tag?: string;
      readonly portName?: string;
    }
  | { readonly kind: 'node'; readonly domain: string; readonly node: string }
  /** `<hex-ip>.addr.<domain>`: the address itself (SRV targets point here). */
  | { readonly kind: 'addr'; readonly domain: string; readonly address: string }
  /** The domain itself (SOA, NS). */
  | { readonly kind: 'apex'; readonly domain: string }
  /** `ns.<domain>`: the name server the NS record names. */
  | { readonly kind: 'ns'; readonly domain: string }
  /** `<reversed-ip>.in-addr.arpa` / `ip6.arpa`, answered from instance and node addresses. */
  | { readonly kind: 'ptr'; readonly address: string }
  /** Under one of our domains but not a name we know: NXDOMAIN. */
  | { readonly kind: 'unknown'; readonly domain: string }
  /** Not ours: forwarded to the recursors, or REFUSED. */
  | { readonly kind: 'outside' };

export interface DnsNameRouterOptions {
  /** Lowercase, without the trailing dot; the first is the primary domain. */
  readonly domains: readonly string[];
  /** This agent's datacenter: `<svc>.service.<dc>.<domain>` names it, other dcs are unknown. */
  readonly datacenter: string;
}

const SERVICE_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const KINDS = new Set(['service', 'node', 'addr']);
const ROUTE_CACHE_SIZE = 4096;

/** Routes question names (as dns-packet decodes them: no trailing dot, any case). */
export class DnsNameRouter {
  readonly #domains: readonly string[];
  readonly #suffixes: readonly string[];
  readonly #datacenter: string;
  /** Routes by name as asked. Routes depend only on the name and the options. */
  readonly #cache = new Map<string, DnsRoute>();

  constructor(options: DnsNameRouterOptions) {
    this.#domains = options.domains;
    this.#suffixes = options.domains.map((d) => `.${d}`);
    this.#datacenter = options.datacenter;
  }

  route(name: string): DnsRoute {
    let route = this.#cache.get(name);
    if (route === undefined) {
      route = this.#route(name);
      // Names repeat; a flood of distinct ones only empties the cache now and then.
      if (this.#cache.size >= ROUTE_CACHE_SIZE) this.#cache.clear();
      this.#cache.set(name, route);
    }
    return route;
  }

  #route(name: string): DnsRoute {
    // RFC 4343: names compare case-insensitively.
    const lower = name.toLowerCase();
    for (let i = 0; i < this.#domains.length; i++) {
      const domain = this.#domains[i] as string;
      if (lower === domain) return { kind: 'apex', domain };
      const suffix = this.#suffixes[i] as string;
      if (lower.endsWith(suffix)) {
        return this.#inDomain(lower.slice(0, -suffix.length).split('.'), domain);
      }
    }
    if (lower.endsWith('.in-addr.arpa') || lower.endsWith('.ip6.arpa')) {
      const address = reverseAddress(lower);
      if (address !== undefined) return { kind: 'ptr', address };
    }
    return { kind: 'outside' };
  }

  #inDomain(labels: string[], domain: string): DnsRoute {
    const unknown: DnsRoute = { kind: 'unknown', domain };
    const n = labels.length;
    if (n === 1 && labels[0] === 'ns') return { kind: 'ns', domain };
    // The kind label is last, or followed by `<dc>` or `<dc>.dc`.
    let k = -1;
    let dc: string | undefined;
    if (KINDS.has(labels[n - 1] as string)) k = n - 1;
    else if (n >= 2 && KINDS.has(labels[n - 2] as string)) {
      k = n - 2;
      dc = labels[n - 1];
    } else if (n >= 3 && labels[n - 1] === 'dc' && KINDS.has(labels[n - 3] as string)) {
      k = n - 3;
      dc = labels[n - 2];
    }
    if (k < 0) {
      // RFC 2782 names may leave out the `service` label: _svc._tag[.<dc>].<domain>.
      const rfc = n === 2 || (n === 3 && labels[2] === this.#datacenter);
      if (rfc && labels[0]?.startsWith('_') === true && labels[1]?.startsWith('_') === true) {
        return this.#service(labels.slice(0, 2), domain) ?? unknown;
      }
      return unknown;
    }
    if (dc !== undefined && dc !== this.#datacenter) return unknown;
    const parts = labels.slice(0, k);
    if (parts.length === 0 || parts.some((p) => p === '')) return unknown;
    switch (labels[k]) {
      case 'service':
        return this.#service(parts, domain) ?? unknown;
      case 'node':
        return { kind: 'node', domain, node: parts.join('.') };
      default: {
        const address = parts.length === 1 ? hexAddress(parts[0] as string) : undefined;
        return address === undefined ? unknown : { kind: 'addr', domain, address };
      }
    }
  }

  #service(parts: readonly string[], domain: string): DnsRoute | undefined {
    const [first, second, third] = parts;
    if (first === undefined) return undefined;
    let service: string;
    let tag: string | undefined;
    let portName: string | undefined;
    if (first.startsWith('_')) {
      if (second?.startsWith('_') !== true) return undefined;
      if (parts.length === 2) {
        // RFC 2782: _<service>._<proto>; a protocol other than tcp/udp is a tag (Consul).
        service = first.slice(1);
        const proto = second.slice(1);
        tag = proto === 'tcp' || proto === 'udp' ? undefined : proto;
      } else if (parts.length === 3 && (second === '_tcp' || second === '_udp')) {
        // Our extension for named ports: _<port-name>._tcp.<service>.
        service = third as string;
        portName = first.slice(1);
        if (portName === '') return undefined;
      } else return undefined;
    } else {
      service = parts[parts.length - 1] as string;
      // Everything left of the service is one tag: tags may contain dots (Consul).
      if (parts.length > 1) tag = parts.slice(0, -1).join('.');
    }
    if (!SERVICE_LABEL.test(service) || tag === '') return undefined;
    return {
      kind: 'service',
      domain,
      service,
      ...(tag === undefined ? {} : { tag }),
      ...(portName === undefined ? {} : { portName }),
    };
  }
}

/** `7f000001` → 127.0.0.1; 32 hex digits → an IPv6 address. */
export function hexAddress(hex: string): string | undefined {
  if (!/^[0-9a-f]+$/.test(hex)) return undefined;
  if (hex.length === 8) {
    const bytes = hex.match(/../g) as string[];
    return bytes.map((b) => parseInt(b, 16)).join('.');
  }
  if (hex.length === 32) return canonicalIPv6((hex.match(/.{4}/g) as string[]).join(':'));
  return undefined;
}

/** The `<hex>` of `<hex>.addr.<domain>` for an IP address. */
export function addressHex(address: string): string {
  if (!address.includes(':')) {
    return address
      .split('.')
      .map((o) => Number(o).toString(16).padStart(2, '0'))
      .join('');
  }
  return expandIPv6(address).join('');
}

/** `4.3.2.1.in-addr.arpa` → 1.2.3.4; 32 reversed nibbles of ip6.arpa → an IPv6 address. */
function reverseAddress(name: string): string | undefined {
  if (name.endsWith('.in-addr.arpa')) {
    const octets = name.slice(0, -'.in-addr.arpa'.length).split('.');
    if (octets.length !== 4 || !octets.every((o) => /^(0|[1-9]\d{0,2})$/.test(o) && +o < 256))
      return undefined;
    return octets.reverse().join('.');
  }
  const nibbles = name.slice(0, -'.ip6.arpa'.length).split('.');
  if (nibbles.length !== 32 || !nibbles.every((x) => /^[0-9a-f]$/.test(x))) return undefined;
  return hexAddress(nibbles.reverse().join(''));
}

/** The canonical text of an IPv6 address (RFC 5952), as instance addresses are compared. */
export function canonicalIPv6(address: string): string {
  if (!isIPv6(address)) return address;
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

/** The eight 4-digit groups of an IPv6 address. */
function expandIPv6(address: string): string[] {
  const [head = '', tail] = canonicalIPv6(address).split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...zeros, ...t].map((g) => g.padStart(4, '0'));
}
