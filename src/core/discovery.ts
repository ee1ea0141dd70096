/** @module Discovery: the read-only view of the catalog that the DNS interface (and later other front ends) answer from. */
import type { Instance, InstanceStatus } from './types.js';

/** One instance as a discovery reader sees it: where it listens, how to weigh it, its status. */
export type DiscoveredInstance = Pick<
  Instance,
  'id' | 'service' | 'address' | 'port' | 'ports' | 'tags' | 'meta' | 'weights' | 'priority'
> & { readonly status: InstanceStatus };

/** An agent node: the name `<node>.node.<domain>` resolves, and its address. */
export interface DiscoveredNode {
  readonly name: string;
  /** An IPv4 or IPv6 address, or a hostname. */
  readonly address: string;
}

/**
 * Reads of the catalog for discovery front ends. Implementations serve the embedded store and
 * the etcd cluster alike.
 *
 * Contract: every method is synchronous, MUST NOT throw for unknown names (it answers empty or
 * undefined), and reflects every change the catalog has applied so far (no cache of its own).
 * Callers may call it for every query; `serviceIndex` MUST be cheap (no copying), so a caller
 * can keep its own copy of `instances(service)` and refresh it only when the index moved.
 */
export interface Discovery {
  /**
   * A number that changes whenever `instances(service)` would answer differently (the
   * service's modify index). Never 0.
   */
  serviceIndex(service: string): number;
  /** Every instance of `service` in any status, in a stable order. Empty when unknown. */
  instances(service: string): readonly DiscoveredInstance[];
  /** Instances (of any service) whose address is `address` exactly. */
  instancesByAddress(address: string): readonly DiscoveredInstance[];
  /** A node by name (names compare case-insensitively), or undefined. */
  node(name: string): DiscoveredNode | undefined;
  /** Every known node. */
  nodes(): readonly DiscoveredNode[];
  /** The catalog's current index (never 0), for the SOA serial. */
  readonly index: number;
}
