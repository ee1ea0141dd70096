/**
 * @module The API's answers as the dashboard reads them: the wire types of src/protocol/ (type
 * imports only, erased from the bundle), so a change to the API's shapes fails the UI's build.
 */
export type { InstanceStatus } from '../../core/types.js';
export type { InstanceDto as WireInstance, WatchEvent } from '../../protocol/api-types.js';
export type { ProxyStatus, ProxyStatusList } from '../../protocol/mesh/snapshot.js';
export type { ClusterHealth } from '../../protocol/mesh/proxy-health.js';
export type { MeshGraph } from '../../protocol/mesh/graph.js';
export type { StoredMeshResource } from '../../protocol/mesh/resource.js';

/** One entry of `GET /api/v1/kv/{key}` (docs/api.md, KV): the value in base64. */
export interface KvEntry {
  readonly key: string;
  readonly value: string;
  readonly flags: number;
  readonly createIndex: number;
  readonly modifyIndex: number;
}
