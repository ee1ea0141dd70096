/**
 * @module Host names of mesh resources resolved to what the compiler keys on: a catalog service
 * name (`payments`), or an external host as written (a ServiceEntry host), or a wildcard.
 */
import { shortHost } from '../protocol/mesh/references.js';

/**
 * The name a host stands for, read in the namespace of the resource (or proxy) that wrote it:
 * `payments`, `payments.<namespace>` (that namespace) and `payments.<any>.svc[.<domain>]` name
 * the catalog service `payments` (the catalog is flat: the namespace only says where the writer
 * looked); any other host (`api.stripe.com`, `httpbin.org`) is kept whole, lower-case, as a
 * ServiceEntry host. Purely syntactic, so a resource's hosts can be resolved without the catalog.
 * @example resolveHost('payments.default.svc.cluster.local', 'default') // 'payments'
 */
export function resolveHost(host: string, namespace: string): string {
  const h = host.toLowerCase();
  const parts = h.split('.');
  if (parts.length >= 3 && parts[2] === 'svc' && parts[0] !== '*') return parts[0] as string;
  return shortHost(h, namespace);
}

/** True when `host` is a wildcard (`*`, `*.example.com`). */
export function isWildcardHost(host: string): boolean {
  return host.startsWith('*');
}

/** True when the wildcard `pattern` (`*` or `*.suffix`) covers `host`. */
export function wildcardCovers(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
}
