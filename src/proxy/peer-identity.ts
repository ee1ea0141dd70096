/**
 * @module The verified identity of a downstream connection's peer (issue 20): set once per
 * connection by the listener that verified it (the sidecar's inbound mTLS), read per request by
 * filters (authorization, the `x-meshwork-source-principal` header). Kept beside the socket, not
 * in a header: a client can send any header, it cannot send this.
 */

/**
 * The downstream connection as filters see it: node's Socket (or TLSSocket) has these fields.
 * Its identity, when verified, is `peerIdentity(socket)`.
 */
export interface DownstreamSocket {
  readonly remoteAddress?: string | undefined;
  readonly localPort?: number | undefined;
  /** The address the connection reached (AuthorizationPolicy `destination.ip`). */
  readonly localAddress?: string | undefined;
  /** A TLS connection's SNI (node's TLSSocket; AuthorizationPolicy `connection.sni`). */
  readonly servername?: string | false | null | undefined;
}

/** What the inbound listener learnt of the peer of one connection. */
export interface PeerIdentity {
  /** The connection is mutual TLS and the peer's certificate chained to the trust bundle. */
  readonly mtls: boolean;
  /** The peer certificate's SPIFFE ID (`spiffe://td/ns/N/sa/S`), when it carried one. */
  readonly spiffeId?: string;
  /** `spiffeId` without `spiffe://`: the AuthorizationPolicy `principals` form. */
  readonly principal?: string;
  /** The namespace of `spiffeId` (AuthorizationPolicy `namespaces`). */
  readonly namespace?: string;
}

const identities = new WeakMap<object, PeerIdentity>();

/** Records the verified identity of `socket`'s peer (once, when its handshake completes). */
export function setPeerIdentity(socket: object, identity: PeerIdentity): void {
  identities.set(socket, identity);
}

/** The identity recorded for `socket`'s peer; undefined: plaintext, or nothing verified. */
export function peerIdentity(socket: object): PeerIdentity | undefined {
  return identities.get(socket);
}
