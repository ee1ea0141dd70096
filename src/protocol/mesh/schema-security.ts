/**
 * @module The security.istio.io spec schemas: AuthorizationPolicy (action, provider, rules of
 * sources, operations and conditions) and PeerAuthentication (mTLS mode, per port).
 */
import { z } from 'zod';
import {
  MESH_LIMITS,
  ipOrCidr,
  list,
  map,
  text,
  unlessFailed,
  workloadSelector,
} from './schema-common.js';
import type {
  AuthorizationCondition,
  AuthorizationOperation,
  AuthorizationPolicySpec,
  AuthorizationSource,
  PeerAuthenticationSpec,
} from './specs.js';

const values = <T extends z.ZodType>(item: T) => list(item, MESH_LIMITS.maxRuleValues, 1);

/** A rule's `source` or `operation`: at least one field, as Istio requires. */
function notEmpty(o: object, ctx: z.RefinementCtx): void {
  if (Object.values(o).some((v) => v !== undefined)) return;
  ctx.addIssue({
    code: 'custom',
    message: 'must set at least one field (Istio refuses an empty one)',
  });
}

const source = z
  .strictObject({
    principals: values(text()).optional(),
    notPrincipals: values(text()).optional(),
    namespaces: values(text(253)).optional(),
    notNamespaces: values(text(253)).optional(),
    ipBlocks: values(ipOrCidr).optional(),
    notIpBlocks: values(ipOrCidr).optional(),
    remoteIpBlocks: values(ipOrCidr).optional(),
    notRemoteIpBlocks: values(ipOrCidr).optional(),
  })
  .superRefine(notEmpty, unlessFailed()) satisfies z.ZodType<AuthorizationSource>;

const port = z
  .string()
  .refine(
    (s) => /^\d{1,5}$/.test(s) && Number(s) >= 1 && Number(s) <= 65535,
    'must be a port number 1..65535 (a string)',
  );
const method = z
  .string()
  .regex(/^[A-Z]{1,32}$/, 'must be an upper-case HTTP method (GET), as Istio matches it exactly');
const path = text()
  .refine(
    (s) => s.startsWith('/') || s.startsWith('*'),
    'must start with / (or * for a suffix match)',
  )
  .refine(
    (s) => !s.includes('{') && !s.includes('}'),
    'path templates ({*}, {**}) are not supported: use a prefix (/a/*) or suffix (*/b) match',
  );

const operation = z
  .strictObject({
    hosts: values(text(253)).optional(),
    notHosts: values(text(253)).optional(),
    ports: values(port).optional(),
    notPorts: values(port).optional(),
    methods: values(method).optional(),
    notMethods: values(method).optional(),
    paths: values(path).optional(),
    notPaths: values(path).optional(),
  })
  .superRefine(notEmpty, unlessFailed()) satisfies z.ZodType<AuthorizationOperation>;

/** The condition keys Meshwork's proxies can evaluate (Istio's, without the JWT ones). */
export const CONDITION_KEYS = Object.freeze([
  'request.headers[<name>]',
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'destination.ip',
  'destination.port',
  'connection.sni',
]);

const HEADER_KEY = /^request\.headers\[[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}\]$/;

const condition = z
  .strictObject({
    key: z
      .string()
      .refine(
        (k) => HEADER_KEY.test(k) || (CONDITION_KEYS.includes(k) && !k.includes('<')),
        `must be one of ${CONDITION_KEYS.join(', ')}`,
      ),
    values: values(text()).optional(),
    notValues: values(text()).optional(),
  })
  .superRefine((c, ctx) => {
    if (c.values === undefined && c.notValues === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must set values or notValues' });
    }
  }, unlessFailed()) satisfies z.ZodType<AuthorizationCondition>;

const rule = z.strictObject({
  from: list(z.strictObject({ source }), MESH_LIMITS.maxRuleEntries, 1).optional(),
  to: list(z.strictObject({ operation }), MESH_LIMITS.maxRuleEntries, 1).optional(),
  when: list(condition, MESH_LIMITS.maxRuleEntries, 1).optional(),
});

/** AuthorizationPolicy `spec`; `action` defaults to ALLOW; CUSTOM, and only CUSTOM, names a provider. */
export const authorizationPolicySpecSchema = z
  .strictObject({
    selector: workloadSelector.optional(),
    action: z.enum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']).default('ALLOW'),
    provider: z.strictObject({ name: text(253) }).optional(),
    rules: list(rule, MESH_LIMITS.maxRules).optional(),
  })
  .superRefine((p, ctx) => {
    if (p.action === 'CUSTOM' && p.provider === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['provider'],
        message: 'required when action is CUSTOM',
      });
    }
    if (p.action !== 'CUSTOM' && p.provider !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['provider'],
        message: `only for action CUSTOM (action is ${p.action})`,
      });
    }
  }, unlessFailed('action')) satisfies z.ZodType<AuthorizationPolicySpec>;

const mtls = z.strictObject({
  mode: z.enum(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT']).default('UNSET'),
});

/** PeerAuthentication `spec`; port-level modes need a selector (Istio's rule). */
export const peerAuthenticationSpecSchema = z
  .strictObject({
    selector: workloadSelector.optional(),
    mtls: mtls.optional(),
    portLevelMtls: map(port, mtls).optional(),
  })
  .superRefine((p, ctx) => {
    if (p.portLevelMtls !== undefined && p.selector === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['portLevelMtls'],
        message: 'needs a selector: Istio applies port-level mTLS only to selected workloads',
      });
    }
  }, unlessFailed()) satisfies z.ZodType<PeerAuthenticationSpec>;
