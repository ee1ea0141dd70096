/**
 * @module Outbound mesh mTLS for a proxy with an identity (issue 20; docs/security.md "Outbound:
 * which connections are mTLS"), shared by the sidecar and the gateway: which endpoints of a
 * snapshot's cluster are reached over mTLS (ISTIO_MUTUAL: all; DISABLE: none; otherwise auto
 * mTLS: instances registered with TLS_MODE_META), one MeshTlsConnector per destination identity
 * (its session cache shared by every pool to it), one pool per identity and pool settings, and
 * the `meshwork_<component>_mtls_connections_total` counter.
 */
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../core/logger.js';
import { spiffeId } from '../protocol/mesh/ca.js';
import type { EndpointTransport } from './cluster.js';
import { MeshTlsConnector, type MeshTlsCount } from './mesh-tls.js';
import type { UpstreamPools } from './proxy-listener.js';
import type { SnapshotRoutesDeps, UpstreamPoolSettings } from './snapshot-routes.js';
import type { MeshTlsIdentity } from './tls-identity.js';

/**
 * Auto mTLS: an instance registered with this meta (by `meshwork sidecar`, when its sidecar has
 * an identity) is reached over mTLS by other proxies, as Istio's `security.istio.io/tlsMode:
 * istio` label does.
 */
export const TLS_MODE_META = 'tls-mode';
export const TLS_MODE_ISTIO = 'istio';

/**
 * Registers `meshwork_<component>_mtls_connections_total{direction, result}` on `registry` (once
 * per registry) and answers the MeshTlsCount that increments it; a refused handshake is also
 * logged at debug level with its reason.
 */
export function meshTlsCount(
  registry: Registry,
  component: string,
  help: string,
  log: Logger,
): MeshTlsCount {
  const counter = new Counter({
    name: `meshwork_${component}_mtls_connections_total`,
    help,
    labelNames: ['direction', 'result'],
    registers: [registry],
  });
  return (direction, result, reason) => {
    counter.inc({ direction, result });
    if (result === 'handshake_failed' || result === 'identity_mismatch')
      log.debug({ direction, result, reason }, 'mTLS refused');
  };
}

export interface MeshTransportsOptions {
  /** The proxy's identity: its leaf and key, and the bundle servers are verified against. */
  readonly identity: MeshTlsIdentity;
  /** Where the mTLS pools come from: one per destination identity and pool settings. */
  readonly pools: Pick<UpstreamPools, 'for'>;
  /** A cluster's pool settings when its DestinationRule sets none: the proxy's connect timeout. */
  readonly connectTimeoutMs: number;
  readonly count: MeshTlsCount;
}

export interface MeshTransports {
  /** SnapshotRoutesDeps' `endpointTransport`: mTLS per instance, per the cluster's `tls`. */
  readonly endpointTransport: NonNullable<SnapshotRoutesDeps['endpointTransport']>;
  /** Stops the connectors following the identity (their pools are the pools' owner's to close). */
  close(): void;
}

/**
 * The outbound mTLS transports of a proxy with an identity: pass `endpointTransport` to
 * buildSnapshotRoutes. Transports and connectors are made on first use and kept (one per
 * destination identity and pool settings), so every snapshot reuses their pools and sessions.
 * @example
 * const mesh = createMeshTransports({ identity, pools, connectTimeoutMs: 1000, count });
 * buildSnapshotRoutes(snapshot, options, { dispatcherFor, endpointTransport: mesh.endpointTransport });
 */
export function createMeshTransports(options: MeshTransportsOptions): MeshTransports {
  const { identity, pools, count } = options;
  const connectors = new Map<string, MeshTlsConnector>();
  const transports = new Map<string, EndpointTransport>();
  /** How the sidecars of `service` in `namespace` are reached: mTLS, their identity checked. */
  const meshTransport = (
    service: string,
    namespace: string,
    pool: UpstreamPoolSettings | undefined,
  ): EndpointTransport => {
    const expected = spiffeId(identity.trustDomain, namespace, service);
    const key = JSON.stringify([expected, pool ?? null]);
    let transport = transports.get(key);
    if (transport === undefined) {
      let connector = connectors.get(expected);
      if (connector === undefined) {
        connector = new MeshTlsConnector(identity, expected, service, count);
        connectors.set(expected, connector);
      }
      const tls = connector;
      transport = {
        dispatcher: pools.for(pool ?? { connectTimeoutMs: options.connectTimeoutMs }, {
          key: expected,
          connector: tls,
        }),
        connect: (host, port) => tls.connect(host, port),
      };
      transports.set(key, transport);
    }
    return transport;
  };
  return {
    /**
     * Which instances of a cluster get mTLS: every one (ISTIO_MUTUAL), none (DISABLE), or, by
     * default (auto mTLS), those registered by a sidecar with an identity (TLS_MODE_META).
     */
    endpointTransport: (c, pool) => {
      const mode = c.tls?.mode;
      if (mode === 'DISABLE') return undefined;
      const forced = mode === 'ISTIO_MUTUAL';
      return (i) =>
        forced || i.meta[TLS_MODE_META] === TLS_MODE_ISTIO
          ? meshTransport(c.service, i.meta['namespace'] ?? 'default', pool)
          : undefined;
    },
    close() {
      for (const c of connectors.values()) c.close();
    },
  };
}
