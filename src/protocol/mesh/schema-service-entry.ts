/**
 * @module The ServiceEntry spec schema (external hosts, their ports, resolution and
 * endpoints) and the Sidecar spec schema (workload selector, outbound traffic policy).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import {
  MESH_LIMITS,
  dnsLabel,
  exactlyOne,
  host,
  hostOrWildcard,
  int,
  isWildcardHost,
  list,
  map,
  portNumber,
  selectorLabels,
  uniqueList,
  unlessFailed,
  workloadSelector,
} from './schema-common.js';
import type { ServiceEntrySpec, ServicePort, SidecarSpec, WorkloadEntry } from './specs.js';

const PROTOCOLS = ['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'TCP', 'TLS'] as const;

const servicePort = z.strictObject({
  number: portNumber,
  name: dnsLabel,
  protocol: z
    .string()
    .max(16, `must be one of ${PROTOCOLS.join(', ')}`)
    .transform((s) => s.toUpperCase())
    .pipe(z.enum(PROTOCOLS))
    .optional(),
  targetPort: portNumber.optional(),
}) satisfies z.ZodType<ServicePort>;

const endpoint = z.strictObject({
  address: z
    .string()
    .max(MESH_LIMITS.maxHostLength, 'must be an IP address or a host name')
    .refine(
      (a) => isIP(a) !== 0 || host.safeParse(a).success,
      'must be an IP address or a host name',
    ),
  ports: map(dnsLabel, portNumber).optional(),
  labels: selectorLabels.optional(),
  // 0 (or absent): the same share as the others.
  weight: int(0, 1_000_000).optional(),
}) satisfies z.ZodType<WorkloadEntry>;

/** ServiceEntry `spec`; `resolution` defaults to NONE, as in Istio. */
export const serviceEntrySpecSchema = z
  .strictObject({
    hosts: uniqueList(hostOrWildcard, MESH_LIMITS.maxHosts, { min: 1 }),
    ports: uniqueList(servicePort, MESH_LIMITS.maxServicePorts, {
      min: 1,
      by: ['number', 'name'],
    }),
    location: z.enum(['MESH_EXTERNAL', 'MESH_INTERNAL']).optional(),
    resolution: z.enum(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN']).default('NONE'),
    endpoints: list(endpoint, MESH_LIMITS.maxEndpoints).optional(),
  })
  .superRefine(
    (se, ctx) => {
      const names = new Set(se.ports.map((p) => p.name));
      (se.endpoints ?? []).forEach((e, i) => {
        for (const name of Object.keys(e.ports ?? {})) {
          if (names.has(name)) continue;
          ctx.addIssue({
            code: 'custom',
            path: ['endpoints', i, 'ports', name],
            message: `must name a port of spec.ports (${[...names].join(', ')})`,
          });
        }
      });
    },
    unlessFailed('ports', 'endpoints'),
  )
  .superRefine(
    (se, ctx) => {
      const endpoints = se.endpoints ?? [];
      // Istio's rules for each resolution (its validation.ValidateServiceEntry).
      switch (se.resolution) {
        case 'NONE':
          if (endpoints.length > 0) {
            ctx.addIssue({
              code: 'custom',
              path: ['endpoints'],
              message: 'must be absent when resolution is NONE (use STATIC or DNS)',
            });
          }
          break;
        case 'STATIC':
          if (endpoints.length === 0) {
            ctx.addIssue({
              code: 'custom',
              path: ['endpoints'],
              message: 'required when resolution is STATIC',
            });
          }
          endpoints.forEach((e, i) => {
            if (isIP(e.address) !== 0) return;
            ctx.addIssue({
              code: 'custom',
              path: ['endpoints', i, 'address'],
              message: 'must be an IP address when resolution is STATIC',
            });
          });
          break;
        case 'DNS':
        case 'DNS_ROUND_ROBIN':
          if (se.resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) {
            ctx.addIssue({
              code: 'custom',
              path: ['endpoints'],
              message: 'must hold at most one endpoint when resolution is DNS_ROUND_ROBIN',
            });
          }
          if (endpoints.length > 0) break;
          se.hosts.forEach((h, i) => {
            if (!isWildcardHost(h)) return;
            ctx.addIssue({
              code: 'custom',
              path: ['hosts', i],
              message: `must not be a wildcard when resolution is ${se.resolution} without endpoints (there is no name to resolve)`,
            });
          });
          break;
      }
    },
    unlessFailed('resolution', 'endpoints', 'hosts'),
  ) satisfies z.ZodType<ServiceEntrySpec>;

/**
 * A Sidecar's `workloadSelector`: Istio spells its labels `labels` (not `matchLabels`, as the
 * security kinds do); both are taken, stored as `matchLabels` like every other selector.
 */
const sidecarWorkloadSelector = z
  .strictObject({
    labels: workloadSelector.shape.matchLabels.optional(),
    matchLabels: workloadSelector.shape.matchLabels.optional(),
  })
  .superRefine((w, ctx) => exactlyOne(w, ['labels', 'matchLabels'], ctx), unlessFailed())
  .transform((w) => ({ matchLabels: w.matchLabels ?? w.labels ?? {} }));

/** Sidecar `spec`. */
export const sidecarSpecSchema = z.strictObject({
  workloadSelector: sidecarWorkloadSelector.optional(),
  outboundTrafficPolicy: z
    .strictObject({ mode: z.enum(['ALLOW_ANY', 'REGISTRY_ONLY']) })
    .optional(),
}) satisfies z.ZodType<SidecarSpec>;
