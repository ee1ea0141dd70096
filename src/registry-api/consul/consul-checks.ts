/** @module Consul check writes shared by the agent and catalog endpoints (register, deregister, TTL updates by CheckID). */
import type { FastifyRequest } from 'fastify';
import type { CheckDefinition, CheckStatus } from '../../core/types.js';
import { requireAcl } from '../acl/request-acl.js';
import type { InstanceDto } from '../../protocol/api-types.js';
import { LIMITS } from '../../protocol/limits.js';
import type { NormalisedBody } from './consul-body.js';
import type { ConsulContext } from './consul-context.js';
import { META_REGISTERED } from './consul-markers.js';
import { refuse } from './consul-refuse.js';
import { checkDefinitions, checkFromConsul } from './consul-registration.js';
import { findCheck } from './consul-shapes.js';

/** The check writes of {@link createConsulCheckWrites}. */
export type ConsulCheckWrites = ReturnType<typeof createConsulCheckWrites>;

/** Check lookups and writes by Consul CheckID, over the context's catalog. */
export function createConsulCheckWrites({ registry, policy, node }: ConsulContext) {
  /** A check write takes write on its service, or on this node for a node check. */
  const requireOwnerWrite = (req: FastifyRequest, service: string | undefined): void => {
    if (service === undefined) requireAcl(req, 'node', node.nodeName, 'write');
    else requireAcl(req, 'service', service, 'write');
  };

  /** Adds `def`, or replaces the check with its id, keeping at most `policy.maxChecks`. */
  const withCheck =
    (def: CheckDefinition, owner: string) =>
    (checks: readonly CheckDefinition[]): CheckDefinition[] => {
      if (checks.length >= policy.maxChecks && !checks.some((c) => c.id === def.id))
        throw refuse(`Invalid check: at most ${policy.maxChecks} checks per ${owner}`);
      return [...checks.filter((c) => c.id !== def.id), def];
    };

  /**
   * Validates one Consul check body and answers the write that registers it: on the service
   * `ServiceID` names, or on the node when there is none (a node-level check applies to every
   * service of this node). Validating first lets a request of several checks refuse all or none.
   */
  const prepareCheck = (req: FastifyRequest, body: NormalisedBody): (() => Promise<void>) => {
    const name = body.Name as string | undefined;
    if (name === undefined || name === '') throw refuse('Missing check name');
    const checkId = (body.CheckID as string | undefined) || name;
    const serviceId = body.ServiceID as string | undefined;
    const target = serviceId ? registry.instanceDefinition(serviceId) : undefined;
    if (serviceId && target === undefined)
      throw refuse(`ServiceID "${serviceId}" does not exist`, 404);
    requireOwnerWrite(req, target?.service);
    const input = checkFromConsul(
      { ...body, CheckID: checkId },
      { serviceId: serviceId ?? '', serviceName: target?.service ?? '', policy },
    );
    const [def] = checkDefinitions([input], policy.floors);
    if (def === undefined) throw refuse('Invalid check');
    // CheckIDs are unique on the agent; Consul would move the check, Meshwork asks to deregister.
    const other = findCheckById(checkId);
    const otherOwner = other === undefined ? undefined : (other.instance?.id ?? '');
    if (otherOwner !== undefined && otherOwner !== (target?.id ?? ''))
      throw refuse(
        `Invalid check: CheckID "${checkId}" is already a check of ${otherOwner === '' ? 'the node' : `service "${otherOwner}"`}: deregister it first`,
      );
    return async () => {
      if (target === undefined) await registry.updateNodeChecks(withCheck(def, 'node'));
      else await registry.updateChecks(target.id, withCheck(def, 'service'));
    };
  };

  /**
   * The check behind a Consul CheckID: a node check (no `instance`) or a service's check. Node
   * checks are looked up first: registration keeps CheckIDs unique.
   */
  const findCheckById = (
    checkId: string,
  ): { instance?: InstanceDto; check: InstanceDto['checks'][number] } | undefined => {
    const nodeCheck = registry.nodeChecks()?.checks.find((c) => c.id === checkId);
    if (nodeCheck !== undefined) return { check: nodeCheck };
    const m = /^service:(.+?)(?::\d+)?$/.exec(checkId);
    const direct = m?.[1] === undefined ? undefined : registry.instance(m[1]);
    return (
      (direct === undefined ? undefined : findCheck([direct], checkId)) ??
      findCheck(
        registry
          .instancesWhere(
            (i) => i.meta[META_REGISTERED] === 'true' && i.checks.some((c) => c.id === checkId),
          )
          .flatMap((i) => registry.instance(i.id) ?? []),
        checkId,
      )
    );
  };

  /** {@link findCheckById}, or Consul's 404. */
  const checkById = (checkId: string) => {
    const found = findCheckById(checkId);
    if (found === undefined)
      throw refuse(
        `Unknown check ID "${checkId}". Ensure that the check ID is passed, not the check name.`,
        404,
      );
    return found;
  };

  /** Removes the check behind a Consul CheckID (404 when there is none). */
  const deregisterCheck = async (req: FastifyRequest, checkId: string): Promise<void> => {
    const { instance, check } = checkById(checkId);
    requireOwnerWrite(req, instance?.service);
    const without = (checks: readonly CheckDefinition[]) => checks.filter((c) => c.id !== check.id);
    if (instance === undefined) await registry.updateNodeChecks(without);
    else await registry.updateChecks(instance.id, without);
  };

  const ttlUpdate = async (
    req: FastifyRequest,
    checkId: string,
    status: CheckStatus,
    output: string,
  ): Promise<void> => {
    const { instance, check } = checkById(checkId);
    requireOwnerWrite(req, instance?.service);
    if (check.kind !== 'ttl')
      throw refuse(`CheckID "${checkId}" does not have associated TTL`, 500);
    if (output.length > LIMITS.maxOutputLength)
      throw refuse(`Output must be at most ${LIMITS.maxOutputLength} characters`);
    if (instance === undefined) await registry.heartbeatNodeCheck(check.id, status, output);
    else await registry.heartbeat(instance.id, status, output, check.id);
  };

  return { prepareCheck, deregisterCheck, ttlUpdate, findCheckById };
}
