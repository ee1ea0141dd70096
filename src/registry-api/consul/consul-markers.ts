/** @module Meshwork's markers in Consul's reserved meta prefix, and the synthetic maintenance check ids. */
import { INTERNAL_META_PREFIX } from '../../core/types.js';

/** Meta keys starting with this are Consul's reserved prefix: Meshwork keeps its markers there. */
export const CONSUL_META_PREFIX = INTERNAL_META_PREFIX;
/** Marks instances registered through /v1: their check ids are Consul CheckIDs verbatim. */
export const META_REGISTERED = 'consul-registered';
/** Marks instances registered with `EnableTagOverride`. */
export const META_TAG_OVERRIDE = 'consul-enable-tag-override';

/** CheckID prefix of a service's synthetic maintenance check (`_service_maintenance:<id>`). */
export const SERVICE_MAINTENANCE_PREFIX = '_service_maintenance:';
/** CheckID of the node's synthetic maintenance check. */
export const NODE_MAINTENANCE_ID = '_node_maintenance';
/** Consul's Notes of a service maintenance check enabled without a reason. */
export const SERVICE_MAINTENANCE_DEFAULT =
  'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.';
/** Consul's Notes of a node maintenance check enabled without a reason. */
export const NODE_MAINTENANCE_DEFAULT =
  'Maintenance mode is enabled for this node, but no reason was provided. This is a default message.';
