/**
 * @module The TLS identity a proxy's listeners and upstream connections use for mesh mTLS (issue
 * 20): its own leaf and key and the trust bundle, as one node SecureContext that changes on
 * renewal and root rotation. The identity manager (mesh-identity/, the sidecar's and the
 * gateway's) provides it (key, CSR, signing, renewal); the proxy's TLS data path consumes it
 * (inbound TLS by PeerAuthentication mode, outbound TLS origination with the peer's SPIFFE ID
 * checked).
 */
import type { SecureContext, SecureContextOptions } from 'node:tls';

export interface MeshTlsIdentity {
  /** The SPIFFE trust domain of this mesh (`cluster.local` by default). */
  readonly trustDomain: string;
  /** This proxy's own SPIFFE ID (its leaf's URI SAN). */
  readonly spiffeId: string;
  /**
   * The context for both roles: the leaf and its key as the certificate, the trust bundle as
   * the CAs. Read it per new connection (never cache it): it is replaced on renewal/rotation.
   */
  secureContext(): SecureContext;
  /**
   * What `secureContext()` was made from (key, cert, ca as PEM; minVersion): what a tls.Server
   * takes through its public `setSecureContext` (a listener's renewal). Read it per change.
   */
  secureContextOptions(): SecureContextOptions;
  /** The trust bundle, PEM (what peers are verified against). */
  bundlePem(): string;
  /** Called after the context changed (renewal, rotation); answers the unsubscribe. */
  onChange(listener: () => void): () => void;
}
