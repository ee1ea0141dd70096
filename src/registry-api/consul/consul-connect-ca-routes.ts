/**
 * @module Consul Connect's CA endpoints over the mesh CA: `GET /v1/agent/connect/ca/roots` and
 * `GET /v1/agent/connect/ca/leaf/:service` (Consul's shapes, blocking on `?index=`), so Consul
 * clients (python-consul2, the Go api package) can fetch the bundle and a service's leaf.
 */
import { X509Certificate } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { systemClock, type Clock } from '../../core/clock.js';
import type { CaRoot, LeafSignResponse } from '../../protocol/mesh/ca.js';
import { SERVICE_NAME } from '../../protocol/registration.js';
import { ACLS_DISABLED, type AclResolver } from '../../registry/acl/acl-contract.js';
import type { MeshCa } from '../../registry/ca/mesh-ca.js';
import { authorizeServiceWrite } from '../native/ca-routes.js';
import type { Query } from '../query.js';
import { parseConsulBlocking } from './consul-query.js';
import { refuse } from './consul-refuse.js';

export const CONSUL_CA_ROOTS_PATH = '/v1/agent/connect/ca/roots';
export const CONSUL_CA_LEAF_PATH = '/v1/agent/connect/ca/leaf/:service';

export interface ConsulConnectCaOptions {
  readonly ca: MeshCa;
  readonly acl?: AclResolver;
  /** Blocking waits and leaf renewal (default: the system clock). */
  readonly clock?: Clock;
}

/** A cached leaf of one service: Consul's agent keeps one per service and renews it. */
interface CachedLeaf {
  readonly leaf: LeafSignResponse & { privateKeyPem: string };
  readonly index: number;
  /** When a newer one is issued: half the leaf's life (Consul renews between 40% and 60%). */
  readonly renewAtMs: number;
}

/** Consul writes fingerprints and serials as lower-case hex bytes joined by colons. */
const colonHex = (hex: string): string => (hex.toLowerCase().match(/../g) ?? []).join(':');

function consulRoot(root: CaRoot, trustDomain: string, index: number): object {
  const cert = new X509Certificate(root.certPem);
  return {
    ID: colonHex(cert.fingerprint.replaceAll(':', '')),
    Name: 'Meshwork CA Root Cert',
    SerialNumber: 0,
    SigningKeyID: colonHex(cert.fingerprint256.replaceAll(':', '')),
    ExternalTrustDomain: trustDomain,
    NotBefore: root.notBefore.replace('.000Z', 'Z'),
    NotAfter: root.notAfter.replace('.000Z', 'Z'),
    RootCert: root.certPem,
    IntermediateCerts: null,
    Active: root.active,
    PrivateKeyType: 'ec',
    PrivateKeyBits: 256,
    CreateIndex: index,
    ModifyIndex: index,
  };
}

/**
 * The routes as a plugin for the API server's `plugins` (its error handler answers /v1 errors
 * in Consul's plain text).
 */
export function consulConnectCaRoutes(
  options: ConsulConnectCaOptions,
): (app: FastifyInstance) => void {
  const { ca } = options;
  const acl = options.acl ?? ACLS_DISABLED;
  const clock = options.clock ?? systemClock;
  const leaves = new Map<string, CachedLeaf>();
  let nextIndex = 1;
  /** Waiters woken by a change of roots (a rotation or a retirement). */
  const waiters = new Set<() => void>();
  ca.onChange(() => {
    for (const wake of [...waiters]) wake();
  });

  /** Resolves at a change of roots, at `deadlineMs` (epoch), or when the request closes. */
  const waitForChange = (req: FastifyRequest, deadlineMs: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = clock.setTimeout(() => done(), Math.max(0, deadlineMs - clock.now()));
      const done = () => {
        clock.clearTimeout(timer);
        waiters.delete(done);
        req.raw.off('close', done);
        resolve();
      };
      waiters.add(done);
      req.raw.once('close', done);
    });

  /** The service's current leaf: the cached one while its root is active and it is young. */
  const currentLeaf = (service: string): CachedLeaf => {
    const cached = leaves.get(service);
    const now = clock.now();
    if (
      cached !== undefined &&
      cached.leaf.rootId === ca.roots().activeRootId &&
      now < cached.renewAtMs
    )
      return cached;
    const leaf = ca.issueLeaf({ service, namespace: 'default' });
    const notBefore = Date.parse(leaf.notBefore);
    const fresh = {
      leaf,
      index: nextIndex++,
      renewAtMs: notBefore + (Date.parse(leaf.notAfter) - notBefore) / 2,
    };
    leaves.set(service, fresh);
    return fresh;
  };

  const json = (reply: FastifyReply, index: number, body: object): FastifyReply =>
    reply
      .header('x-consul-index', String(index))
      .header('x-consul-knownleader', 'true')
      .header('x-consul-lastcontact', '0')
      .header('content-type', 'application/json; charset=utf-8')
      .send(JSON.stringify(body));

  return (app) => {
    app.get(CONSUL_CA_ROOTS_PATH, async (req, reply) => {
      const { index, waitMs } = parseConsulBlocking(req.query as Query);
      if (index > 0 && ca.index() <= index) await waitForChange(req, clock.now() + waitMs);
      const roots = ca.roots();
      const at = ca.index();
      return json(reply, at, {
        ActiveRootID: colonHex(
          new X509Certificate(
            roots.roots.find((r) => r.active)?.certPem ?? roots.bundlePem,
          ).fingerprint.replaceAll(':', ''),
        ),
        TrustDomain: roots.trustDomain,
        Roots: roots.roots.map((r) => consulRoot(r, roots.trustDomain, at)),
      });
    });

    app.get(CONSUL_CA_LEAF_PATH, async (req, reply) => {
      const service = (req.params as { service: string }).service;
      if (!SERVICE_NAME.test(service)) throw refuse(`Invalid service name "${service}"`);
      await authorizeServiceWrite(acl, req, service);
      const { index, waitMs } = parseConsulBlocking(req.query as Query);
      let cached = currentLeaf(service);
      if (index > 0 && cached.index <= index) {
        // Blocks until the leaf changes: a rotation, or its renewal time, or the wait ends.
        await waitForChange(req, Math.min(clock.now() + waitMs, cached.renewAtMs));
        cached = currentLeaf(service);
      }
      const { leaf } = cached;
      return json(reply, cached.index, {
        SerialNumber: colonHex(leaf.serial),
        CertPEM: leaf.certPem,
        PrivateKeyPEM: leaf.privateKeyPem,
        Service: service,
        ServiceURI: leaf.spiffeId,
        ValidAfter: leaf.notBefore.replace('.000Z', 'Z'),
        ValidBefore: leaf.notAfter.replace('.000Z', 'Z'),
        CreateIndex: cached.index,
        ModifyIndex: cached.index,
      });
    });
  };
}
