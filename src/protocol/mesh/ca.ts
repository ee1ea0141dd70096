/**
 * @module Wire shapes of the mesh CA (issue 20; docs/security.md): the trust bundle, leaf
 * signing from a CSR and root rotation, shared by the agent's routes, the CLI (`meshwork ca`)
 * and the sidecar, and the SPIFFE identity of a service. Types and pure helpers only.
 */

/** The trust domain of SPIFFE IDs when none is configured (Istio's). */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

/** `GET /api/v1/mesh/ca/roots` (and `POST .../rotate` answers the same shape). */
export const CA_ROOTS_PATH = '/api/v1/mesh/ca/roots';
/** `POST /api/v1/mesh/ca/leaf` with a LeafSignRequest: a LeafSignResponse. */
export const CA_LEAF_PATH = '/api/v1/mesh/ca/leaf';
/** `POST /api/v1/mesh/ca/rotate` (body `{}` or RotateRequest): a CaRootsResponse. */
export const CA_ROTATE_PATH = '/api/v1/mesh/ca/rotate';

/** One root of the bundle. */
export interface CaRoot {
  /** Stable id: the hex SHA-256 of the certificate's DER, lower case. */
  readonly id: string;
  /** The root certificate, PEM. */
  readonly certPem: string;
  /** RFC 3339. */
  readonly notBefore: string;
  readonly notAfter: string;
  /** Leaves are signed by the active root; exactly one root is active. */
  readonly active: boolean;
  /**
   * During a rotation, the root being retired: kept in the bundle (peers still present leaves
   * it signed) until this time (RFC 3339), then removed.
   */
  readonly retiresAt?: string;
}

export interface CaRootsResponse {
  readonly trustDomain: string;
  readonly activeRootId: string;
  /** Active first, then the ones being retired. */
  readonly roots: readonly CaRoot[];
  /** Every root's PEM, concatenated in `roots` order: what a verifier trusts. */
  readonly bundlePem: string;
}

/** `POST /api/v1/mesh/ca/leaf`. The token (header) must allow writing `service`. */
export interface LeafSignRequest {
  /** A PKCS#10 CSR, PEM. Its key is the caller's; only the public key is used. */
  readonly csr: string;
  readonly service: string;
  /** Default `default`. */
  readonly namespace?: string;
}

export interface LeafSignResponse {
  /** The leaf, PEM (its issuer is the active root; no intermediates). */
  readonly certPem: string;
  readonly rootId: string;
  /** The URI SAN the leaf carries. */
  readonly spiffeId: string;
  /** Hex. */
  readonly serial: string;
  /** RFC 3339. */
  readonly notBefore: string;
  readonly notAfter: string;
}

export interface RotateRequest {
  /** How long the old root stays in the bundle, e.g. `1h`; default: the leaf lifetime. */
  readonly overlap?: string;
}

/** A service's SPIFFE ID: `spiffe://<trust-domain>/ns/<namespace>/sa/<service>`. */
export function spiffeId(trustDomain: string, namespace: string, service: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${service}`;
}

export interface SpiffeIdentity {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly service: string;
}

const SPIFFE = /^spiffe:\/\/([^/?#]+)\/ns\/([^/?#]+)\/sa\/([^/?#]+)$/;

/** The parts of a `spiffe://td/ns/N/sa/S` ID, or undefined for anything else. */
export function parseSpiffeId(uri: string): SpiffeIdentity | undefined {
  const m = SPIFFE.exec(uri);
  if (m === null) return undefined;
  return { trustDomain: m[1] as string, namespace: m[2] as string, service: m[3] as string };
}

/**
 * The principal of a SPIFFE ID as an AuthorizationPolicy writes it (Istio: the ID without
 * `spiffe://`, e.g. `cluster.local/ns/default/sa/orders`).
 */
export function principalOf(id: string): string {
  return id.startsWith('spiffe://') ? id.slice('spiffe://'.length) : id;
}
