/**
 * @module Consul's answer shapes (Node, NodeService, AgentService, ServiceNode, HealthCheck) from
 * our instances and checks. One agent is one Consul node; each instance is a service of that node;
 * its checks are the service's checks; maintenance shows as Consul's synthetic
 * `_service_maintenance:<id>` / `_node_maintenance` critical checks; the node always carries a
 * passing `serfHealth` check. Field names and defaults follow shared/docs/consul-api.md §3.1, §5.
 */
import { createHash } from 'node:crypto';
import { formatDurationMs } from '../../core/duration.js';
import type { CheckDefinition, Maintenance } from '../../core/types.js';
import type { CheckDto, InstanceDto } from '../../protocol/api-types.js';
import type { NodeChecksDto } from '../../registry/catalog-facade.js';
import {
  CONSUL_META_PREFIX,
  META_REGISTERED,
  META_TAG_OVERRIDE,
  NODE_MAINTENANCE_DEFAULT,
  NODE_MAINTENANCE_ID,
  SERVICE_MAINTENANCE_DEFAULT,
  SERVICE_MAINTENANCE_PREFIX,
} from './consul-markers.js';

/** What the adapter says about its node. */
export interface ConsulNodeInfo {
  readonly nodeName: string;
  readonly datacenter: string;
  /** The node's address (services without an address are reached here). */
  readonly address: string;
}

/** The last node ID derived: an agent has one node name, and listings ask for it per item. */
let lastNodeId: { readonly nodeName: string; readonly id: string } | undefined;

/** A stable UUID-shaped node ID derived from the node name (Consul nodes have one). */
export function nodeId(nodeName: string): string {
  if (lastNodeId?.nodeName === nodeName) return lastNodeId.id;
  const h = createHash('sha256').update(`meshwork-node:${nodeName}`).digest('hex');
  const id = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
  lastNodeId = { nodeName, id };
  return id;
}

/** Catalog `Node` object. */
export function consulNode(node: ConsulNodeInfo): Record<string, unknown> {
  return {
    ID: nodeId(node.nodeName),
    Node: node.nodeName,
    Address: node.address,
    Datacenter: node.datacenter,
    TaggedAddresses: { lan: node.address, wan: node.address },
    Meta: { 'consul-network-segment': '' },
    CreateIndex: 1,
    ModifyIndex: 1,
  };
}

/**
 * The node's own checks: serfHealth, the node-level checks registered on this agent (no
 * ServiceID), then _node_maintenance while the agent is in maintenance.
 */
export function nodeChecks(
  node: ConsulNodeInfo,
  maintenance: Maintenance | undefined,
  registered?: NodeChecksDto,
): Record<string, unknown>[] {
  const base = {
    Node: node.nodeName,
    Notes: '',
    ServiceID: '',
    ServiceName: '',
    ServiceTags: [],
    Type: '',
    Interval: '',
    Timeout: '',
    ExposedPort: 0,
    Definition: {},
    CreateIndex: 1,
    ModifyIndex: 1,
  };
  const out: Record<string, unknown>[] = [
    {
      ...base,
      CheckID: 'serfHealth',
      Name: 'Serf Health Status',
      Status: 'passing',
      Output: 'Agent alive and reachable',
    },
  ];
  for (const c of registered?.checks ?? []) {
    out.push(
      healthCheck(
        node,
        c,
        c.id,
        undefined,
        registered?.createIndex ?? 1,
        registered?.modifyIndex ?? 1,
      ),
    );
  }
  if (maintenance?.enabled === true) {
    out.push({
      ...base,
      CheckID: NODE_MAINTENANCE_ID,
      Name: 'Node Maintenance Mode',
      Status: 'critical',
      Notes: maintenance.reason || NODE_MAINTENANCE_DEFAULT,
      Output: '',
    });
  }
  return out;
}

/** The Consul CheckID of an instance's check at `position` (0-based). */
export function consulCheckId(
  instance: InstanceDto,
  check: CheckDefinition,
  position: number,
): string {
  // Instances registered through /v1 keep Consul's ids as their check ids. Native ones get the
  // ids Consul would have given them, so ids stay unique across the node.
  if (instance.meta[META_REGISTERED] === 'true') return check.id;
  return instance.checks.length === 1
    ? `service:${instance.id}`
    : `service:${instance.id}:${position + 1}`;
}

/** Finds the check behind a Consul CheckID among `candidates`. */
export function findCheck(
  candidates: Iterable<InstanceDto>,
  checkId: string,
): { instance: InstanceDto; check: CheckDto } | undefined {
  for (const instance of candidates) {
    const i = instance.checks.findIndex((c, n) => consulCheckId(instance, c, n) === checkId);
    const check = instance.checks[i];
    if (check !== undefined) return { instance, check };
  }
  return undefined;
}

/** Consul's meta: the instance's meta minus Meshwork's markers. */
function consulMeta(meta: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) if (!k.startsWith(CONSUL_META_PREFIX)) out[k] = v;
  return out;
}

const weightsOf = (i: InstanceDto) => ({ Passing: i.weights.passing, Warning: i.weights.warning });
const tagOverride = (i: InstanceDto): boolean => i.meta[META_TAG_OVERRIDE] === 'true';

/** A `HealthCheck` object: of service `i`, or of the node when `i` is undefined. */
function healthCheck(
  node: ConsulNodeInfo,
  c: CheckDto,
  checkId: string,
  i: InstanceDto | undefined,
  createIndex: number,
  modifyIndex: number,
): Record<string, unknown> {
  return {
    Node: node.nodeName,
    CheckID: checkId,
    Name: c.name,
    Status: c.status,
    Notes: c.notes ?? '',
    Output: c.output,
    ServiceID: i?.id ?? '',
    ServiceName: i?.service ?? '',
    ServiceTags: i?.tags ?? [],
    Type: c.kind,
    Interval: c.kind === 'ttl' ? '' : formatDurationMs(c.intervalMs),
    Timeout: c.kind === 'ttl' ? '' : formatDurationMs(c.timeoutMs),
    ExposedPort: 0,
    Definition: {},
    CreateIndex: createIndex,
    ModifyIndex: modifyIndex,
  };
}

/** `HealthCheck` objects of an instance: its checks, then its maintenance check if any. */
export function serviceChecks(node: ConsulNodeInfo, i: InstanceDto): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = i.checks.map((c, n) =>
    healthCheck(node, c, consulCheckId(i, c, n), i, i.createIndex, i.modifyIndex),
  );
  if (i.maintenance.enabled) {
    out.push({
      Node: node.nodeName,
      CheckID: SERVICE_MAINTENANCE_PREFIX + i.id,
      Name: 'Service Maintenance Mode',
      Status: 'critical',
      Notes: i.maintenance.reason || SERVICE_MAINTENANCE_DEFAULT,
      Output: '',
      ServiceID: i.id,
      ServiceName: i.service,
      ServiceTags: i.tags,
      Type: 'maintenance',
      Interval: '',
      Timeout: '',
      ExposedPort: 0,
      Definition: {},
      CreateIndex: i.modifyIndex,
      ModifyIndex: i.modifyIndex,
    });
  }
  return out;
}

/** `NodeService` (health/service "Service", catalog/node "Services" values). */
export function nodeService(i: InstanceDto): Record<string, unknown> {
  return {
    ID: i.id,
    Service: i.service,
    Tags: i.tags,
    Address: i.address,
    Meta: consulMeta(i.meta),
    Port: i.port,
    Weights: weightsOf(i),
    EnableTagOverride: tagOverride(i),
    Proxy: { Mode: '', MeshGateway: {}, Expose: {} },
    Connect: {},
    CreateIndex: i.createIndex,
    ModifyIndex: i.modifyIndex,
  };
}

/** `AgentService` (agent/services values, agent/service/:id). */
export function agentService(node: ConsulNodeInfo, i: InstanceDto): Record<string, unknown> {
  return {
    ID: i.id,
    Service: i.service,
    Tags: i.tags,
    Meta: consulMeta(i.meta),
    Port: i.port,
    Address: i.address,
    Weights: weightsOf(i),
    EnableTagOverride: tagOverride(i),
    Datacenter: node.datacenter,
  };
}

/** `ServiceNode` (catalog/service items). */
export function serviceNode(node: ConsulNodeInfo, i: InstanceDto): Record<string, unknown> {
  const { ID, Node, Address, Datacenter, TaggedAddresses, Meta } = consulNode(node);
  return {
    ID,
    Node,
    Address,
    Datacenter,
    TaggedAddresses,
    NodeMeta: Meta,
    ServiceKind: '',
    ServiceID: i.id,
    ServiceName: i.service,
    ServiceTags: i.tags,
    ServiceAddress: i.address,
    ServiceWeights: weightsOf(i),
    ServiceMeta: consulMeta(i.meta),
    ServicePort: i.port,
    ServiceEnableTagOverride: tagOverride(i),
    ServiceProxy: {},
    ServiceConnect: {},
    CreateIndex: i.createIndex,
    ModifyIndex: i.modifyIndex,
  };
}

/** Consul's aggregated status of a service instance: maintenance > critical > warning > passing. */
export function aggregatedStatus(checks: readonly Record<string, unknown>[]): string {
  let worst = 'passing';
  for (const c of checks) {
    const id = String(c.CheckID);
    if (id === NODE_MAINTENANCE_ID || id.startsWith(SERVICE_MAINTENANCE_PREFIX))
      return 'maintenance';
    if (c.Status === 'critical') worst = 'critical';
    else if (c.Status === 'warning' && worst === 'passing') worst = 'warning';
  }
  return worst;
}
