/**
 * @module The mesh CA's endpoints of the native API: the trust bundle
 * (`GET /api/v1/mesh/ca/roots`), leaf signing from a CSR for a service the token may write
 * (`POST /api/v1/mesh/ca/leaf`) and root rotation (`POST /api/v1/mesh/ca/rotate`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseDurationMs } from '../../core/duration.js';
import { errors } from '../../core/errors.js';
import {
  CA_LEAF_PATH,
  CA_ROOTS_PATH,
  CA_ROTATE_PATH,
  type LeafSignRequest,
} from '../../protocol/mesh/ca.js';
import { SERVICE_NAME, serviceNameSchema } from '../../protocol/registration.js';
import { parseOrThrow } from '../../protocol/validation.js';
import {
  ACLS_DISABLED,
  requestToken,
  type AclResolver,
  type Authorizer,
} from '../../registry/acl/acl-contract.js';
import type { MeshCa } from '../../registry/ca/mesh-ca.js';
import { jsonBody } from '../body.js';

/** A namespace: a DNS label, as a Kubernetes namespace (and as service names are). */
export const namespaceSchema = z
  .string()
  .regex(
    SERVICE_NAME,
    'must be 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen',
  );

const leafSignSchema = z
  .object({
    csr: z.string(),
    service: serviceNameSchema,
    namespace: namespaceSchema.optional(),
  })
  .strict();

/** Overlaps beyond this are refused: a root outliving a year of rotation is not an overlap. */
const MAX_OVERLAP_MS = 366 * 86_400_000;

const rotateSchema = z
  .object({
    overlap: z.string().optional(),
  })
  .strict();

export interface CaRoutesOptions {
  readonly ca: MeshCa;
  /** Who may sign what (default: ACLs off, anyone may). */
  readonly acl?: AclResolver;
}

/** The token's right to `service:<name> write`, or a 403 naming what is missing. */
export async function authorizeServiceWrite(
  acl: AclResolver,
  req: FastifyRequest,
  service: string,
): Promise<Authorizer> {
  const authorizer = await acl.resolve(
    requestToken(req.headers, req.query as Record<string, unknown>),
  );
  const decision = authorizer.check('service', service, 'write');
  if (!decision.allowed) throw errors.aclDenied(decision.missing);
  return authorizer;
}

/** Parses a leaf request body: 400 naming the field for anything else. */
export function parseLeafSignRequest(body: unknown): Required<LeafSignRequest> {
  const parsed = parseOrThrow(leafSignSchema, body);
  return { csr: parsed.csr, service: parsed.service, namespace: parsed.namespace ?? 'default' };
}

/** A rotation's overlap in ms (the leaf lifetime when not given): 400 naming `overlap`. */
export function parseRotateRequest(body: unknown, defaultMs: number): number {
  const parsed = parseOrThrow(rotateSchema, body);
  if (parsed.overlap === undefined) return defaultMs;
  const ms = parseDurationMs(parsed.overlap);
  if (ms === undefined) throw errors.validation('overlap', 'must be a duration such as 1h or 30m');
  if (ms > MAX_OVERLAP_MS) throw errors.validation('overlap', 'must be at most 366 days');
  return ms;
}

const json = (reply: FastifyReply, body: object): FastifyReply =>
  reply.header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(body));

/**
 * The routes as a plugin for the API server's `plugins` (so the Host and Origin rules and the
 * error shapes apply).
 * @example
 * createApiServer({ ..., plugins: [caRoutes({ ca, acl })] });
 */
export function caRoutes(options: CaRoutesOptions): (app: FastifyInstance) => void {
  const { ca } = options;
  const acl = options.acl ?? ACLS_DISABLED;
  return (app) => {
    app.get(CA_ROOTS_PATH, async (_req, reply) => json(reply, ca.roots()));

    app.post(CA_LEAF_PATH, async (req, reply) => {
      const request = parseLeafSignRequest(jsonBody(req));
      await authorizeServiceWrite(acl, req, request.service);
      return json(reply, ca.signLeaf(request));
    });

    app.post(CA_ROTATE_PATH, async (req, reply) => {
      const overlapMs = parseRotateRequest(jsonBody(req, {}), ca.leafTtlMs);
      const authorizer = await acl.resolve(
        requestToken(req.headers, req.query as Record<string, unknown>),
      );
      // Rotating the mesh's roots is an operator's act (Consul: `operator:write` for the CA).
      const decision = authorizer.check('operator', '', 'write');
      if (!decision.allowed) throw errors.aclDenied(decision.missing);
      return json(reply, await ca.rotate(overlapMs));
    });
  };
}
