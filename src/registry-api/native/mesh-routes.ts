/**
 * @module The mesh endpoints of the native API (`/api/v1/mesh/...`): apply resources and instances
 * together, all or nothing; list, read (blocking on the `mesh` topic) and delete resources.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errors } from '../../core/errors.js';
import type {
  MeshApplyResponse,
  MeshDeleteResponse,
  MeshResourceListResponse,
  MeshResourceResponse,
} from '../../protocol/mesh/api.js';
import {
  MESH_KIND_INFO,
  MESH_KINDS,
  meshKindOf,
  type MeshKind,
  type MeshResourceKey,
} from '../../protocol/mesh/resource.js';
import type { CatalogFacade, Topic } from '../../registry/catalog-facade.js';
import { jsonBody } from '../body.js';
import { first, type Query } from '../query.js';
import { requireSetWrite } from '../acl/acl-route-rules.js';
import { parseMeshApplyBody, withDocuments } from './mesh-apply-body.js';

export interface MeshRoutesOptions {
  readonly registry: CatalogFacade;
  /** Answers `body` as JSON with the index header. */
  readonly json: (reply: FastifyReply, index: number, body: object) => FastifyReply;
  /** Runs a blocking query when `?index=` is given. */
  readonly blocking: (
    req: FastifyRequest,
    topic: Topic,
    currentIndex: () => number,
  ) => Promise<void>;
}

const PLURALS = MESH_KINDS.map((k) => MESH_KIND_INFO[k].plural);

/** The kind a URL word names (plural, kind or short name), or a 404 listing the plurals. */
function kindParam(word: string): MeshKind {
  const kind = meshKindOf(word);
  if (kind === undefined) throw errors.meshKindUnknown(word, PLURALS);
  return kind;
}

interface ResourceParams {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

const keyOf = (p: ResourceParams): MeshResourceKey =>
  `${kindParam(p.kind)}/${p.namespace}/${p.name}`;

/** Registers the `/api/v1/mesh` routes on `app`. */
export function registerMeshRoutes(
  app: FastifyInstance,
  { registry, json, blocking }: MeshRoutesOptions,
): void {
  app.post('/api/v1/mesh/apply', async (req, reply) => {
    const parsed = parseMeshApplyBody(jsonBody(req));
    if (parsed.instances !== undefined)
      requireSetWrite(req, registry, parsed.instances.set, parsed.instances.inputs);
    let result;
    try {
      result = await registry.applyMesh({
        resources: parsed.resources,
        ...(parsed.instances === undefined
          ? {}
          : {
              instances: {
                set: parsed.instances.set,
                inputs: parsed.instances.inputs,
                source: 'config',
              },
            }),
        dryRun: parsed.dryRun,
      });
    } catch (err) {
      throw withDocuments(err, parsed.documentOf);
    }
    const body: MeshApplyResponse = {
      index: result.index,
      dryRun: result.dryRun,
      resources: result.resources,
      ...(result.instances === undefined ? {} : { instances: result.instances }),
      warnings: parsed.warnings,
    };
    return json(reply, result.index, body);
  });

  const list = async (
    req: FastifyRequest,
    reply: FastifyReply,
    kind: MeshKind | undefined,
  ): Promise<FastifyReply> => {
    const namespace = first((req.query as Query).namespace);
    await blocking(req, 'mesh', () => registry.meshIndex);
    const index = registry.meshIndex;
    const all = registry.meshResources(kind);
    const body: MeshResourceListResponse = {
      index,
      resources:
        namespace === undefined || namespace === ''
          ? all
          : all.filter((r) => r.resource.metadata.namespace === namespace),
    };
    return json(reply, index, body);
  };

  app.get('/api/v1/mesh/resources', (req, reply) => list(req, reply, undefined));

  app.get('/api/v1/mesh/resources/:kind', (req, reply) =>
    list(req, reply, kindParam((req.params as { kind: string }).kind)),
  );

  app.get('/api/v1/mesh/resources/:kind/:namespace/:name', async (req, reply) => {
    const key = keyOf(req.params as ResourceParams);
    await blocking(req, 'mesh', () => registry.meshIndex);
    const found = registry.meshResource(key);
    if (found === undefined) throw errors.meshResourceNotFound(key);
    const body: MeshResourceResponse = { index: registry.meshIndex, resource: found };
    return json(reply, body.index, body);
  });

  app.delete('/api/v1/mesh/resources/:kind/:namespace/:name', async (req, reply) => {
    const r = await registry.deleteMeshResource(keyOf(req.params as ResourceParams));
    const body: MeshDeleteResponse = { index: r.index, deleted: r.deleted };
    return json(reply, r.index, body);
  });
}
