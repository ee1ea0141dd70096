/**
 * @module The mesh mTLS data path's pieces (issue 20; docs/security.md "mTLS between sidecars"):
 * reading a peer certificate's SPIFFE ID, the inbound acceptor that takes each connection as
 * PeerAuthentication says (STRICT: mTLS only; PERMISSIVE: mTLS or plaintext on the same port, told
 * apart by the first byte; DISABLE: plaintext), and the outbound connector that originates TLS
 * 1.3 with the proxy's leaf and checks the server's SPIFFE ID, with session resumption.
 */
import type { PeerCertificate } from 'node:tls';
import { Server as TlsServer, connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { errors, isMeshError } from '../core/errors.js';
import { parseSpiffeId, principalOf } from '../protocol/mesh/ca.js';
import type { MtlsMode } from '../protocol/mesh/specs.js';
import { setPeerIdentity, type PeerIdentity } from './peer-identity.js';
import type { MeshTlsIdentity } from './tls-identity.js';

/**
 * The URIs of node's `subjectaltname` string (`DNS:a, URI:spiffe://td/ns/x/sa/y`): entries are
 * separated by `, `; a value with a separator, quote or control character in it is written as a
 * JSON string (node >= 17.3, CVE-2021-44532), which is decoded here.
 */
export function uriSans(subjectaltname: string | undefined): string[] {
  const uris: string[] = [];
  if (subjectaltname === undefined) return uris;
  let i = 0;
  const s = subjectaltname;
  while (i < s.length) {
    const colon = s.indexOf(':', i);
    if (colon === -1) break;
    const type = s.slice(i, colon);
    let value: string;
    let next: number;
    if (s[colon + 1] === '"') {
      // A JSON string: find its closing quote (one not escaped).
      let j = colon + 2;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(s.slice(colon + 1, j + 1)) as string;
      } catch {
        return uris;
      }
      next = j + 1;
    } else {
      const end = s.indexOf(', ', colon + 1);
      next = end === -1 ? s.length : end;
      value = s.slice(colon + 1, next);
    }
    if (type === 'URI') uris.push(value);
    if (s.startsWith(', ', next)) next += 2;
    else if (next < s.length) return uris;
    i = next;
  }
  return uris;
}

/** The identity of a peer certificate: its SPIFFE ID (the first URI SAN that is one). */
export function certificateIdentity(cert: PeerCertificate | undefined): PeerIdentity {
  for (const uri of uriSans(cert?.subjectaltname)) {
    const id = parseSpiffeId(uri);
    if (id !== undefined)
      return { mtls: true, spiffeId: uri, principal: principalOf(uri), namespace: id.namespace };
  }
  return { mtls: true };
}

/** Where the data path's TLS outcomes are counted (a metric's `inc`). */
export type MeshTlsCount = (
  direction: 'inbound' | 'outbound',
  result: MeshTlsResult,
  reason?: string,
) => void;

/**
 * inbound: `mtls` (a verified client), `plaintext` (PERMISSIVE, DISABLE), `refused_plaintext`
 * (STRICT), `handshake_failed` (no certificate, another CA, expired, not TLS 1.3); outbound:
 * `mtls`, `resumed` (a cached session), `handshake_failed` (the server's certificate refused, an
 * alert), `identity_mismatch` (the server's SPIFFE ID is not the destination's).
 */
export type MeshTlsResult =
  'mtls' | 'resumed' | 'plaintext' | 'refused_plaintext' | 'handshake_failed' | 'identity_mismatch';

/** The first byte of a TLS record carrying a handshake (RFC 8446 5.1: ContentType 22). */
const TLS_HANDSHAKE = 0x16;

/** How long a new connection may stay silent before its first byte decides plaintext or TLS. */
const FIRST_BYTE_TIMEOUT_MS = 30_000;

/** How long an inbound TLS handshake may take. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface InboundTlsOptions {
  readonly identity: MeshTlsIdentity;
  /** The mode of a new connection (read once per connection: a snapshot may change it). */
  readonly mode: () => MtlsMode;
  readonly count: MeshTlsCount;
}

/**
 * The inbound side's acceptor: takes raw TCP connections and hands the HTTP server either a
 * verified TLS socket (its peer's identity recorded with setPeerIdentity) or, where the mode
 * allows it, the plaintext socket with no byte lost. Verification is node's tls.Server's own
 * (chain to the bundle, validity), run by a server that never listens: connections are given to
 * it by `accept`.
 */
export class InboundTlsAcceptor {
  readonly #options: InboundTlsOptions;
  readonly #tls: TlsServer;
  readonly #unsubscribe: () => void;

  constructor(options: InboundTlsOptions, handOver: (socket: Socket) => void) {
    this.#options = options;
    const server = new TlsServer({
      requestCert: true,
      rejectUnauthorized: true,
      // A peer sidecar handshakes in milliseconds; node's default (120 s) would let a silent
      // client hold a connection that long.
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    });
    this.#tls = server;
    this.#useContext();
    // A renewal or rotation: new handshakes use the new context, open connections keep theirs.
    this.#unsubscribe = options.identity.onChange(() => this.#useContext());
    server.on('secureConnection', (socket: TLSSocket) => {
      // The context is the identity's, whose own minimum version the server's option cannot
      // raise: TLS 1.3 is checked here.
      const protocol = socket.getProtocol();
      if (protocol !== 'TLSv1.3') {
        options.count('inbound', 'handshake_failed', `protocol ${String(protocol)}`);
        socket.destroy();
        return;
      }
      setPeerIdentity(socket, certificateIdentity(socket.getPeerCertificate()));
      options.count('inbound', 'mtls');
      handOver(socket);
    });
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      // A certificate refused by verification is destroyed without an error: its reason is
      // authorizationError (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...).
      const reason = socket.authorizationError ?? err.code ?? err.message;
      options.count('inbound', 'handshake_failed', String(reason));
      socket.destroy();
    });
  }

  /**
   * The identity's leaf, key and bundle as the server's context, through node's public
   * `setSecureContext` (which also gives it the server's session id context: resumption with
   * client certificates needs one). New handshakes use it; open connections keep theirs.
   */
  #useContext(): void {
    this.#tls.setSecureContext(this.#options.identity.secureContextOptions());
  }

  /** Takes one new connection (see the class comment). */
  accept(socket: Socket, plaintext: (socket: Socket) => void): void {
    const mode = this.#options.mode();
    if (mode === 'DISABLE') {
      this.#options.count('inbound', 'plaintext');
      plaintext(socket);
      return;
    }
    socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, () => socket.destroy());
    const done = (): void => {
      socket.off('readable', onReadable);
      socket.off('end', ended);
      socket.off('close', done);
      socket.setTimeout(0);
    };
    // A client that leaves before its first byte (the listener allows half-open sockets).
    const ended = (): void => void socket.destroy();
    const onReadable = (): void => {
      const first = socket.read(1) as Buffer | null;
      if (first === null) return; // nothing yet (or the end: 'close' follows)
      done();
      socket.unshift(first);
      if (first[0] === TLS_HANDSHAKE) {
        this.#tls.emit('connection', socket);
        return;
      }
      if (mode === 'STRICT') {
        this.#options.count('inbound', 'refused_plaintext');
        socket.destroy();
        return;
      }
      this.#options.count('inbound', 'plaintext');
      plaintext(socket);
    };
    socket.on('error', () => socket.destroy());
    socket.on('readable', onReadable);
    socket.on('end', ended);
    socket.on('close', done);
  }

  close(): void {
    this.#unsubscribe();
  }
}

/** Sessions kept per connector (distinct upstream endpoints). */
const MAX_SESSIONS = 1024;

/**
 * The outbound side's TLS origination to the endpoints of one destination service: TLS 1.3
 * with the proxy's identity, the server verified against the bundle (node) and its SPIFFE ID
 * required to be `expected` (here: node's hostname check ignores URI SANs). Sessions are cached
 * per endpoint (TLS 1.3 tickets) and offered on the next connection, so a new connection to a
 * known endpoint resumes instead of a full handshake; the cache is emptied when the identity
 * changes.
 */
export class MeshTlsConnector {
  readonly #identity: MeshTlsIdentity;
  readonly expected: string;
  readonly #service: string;
  readonly #count: MeshTlsCount;
  #sessions = new Map<string, Buffer>();
  /** Sockets whose handshake completed (their later errors are not the handshake's). */
  readonly #secured = new WeakSet<TLSSocket>();
  readonly #unsubscribe: () => void;

  constructor(identity: MeshTlsIdentity, expected: string, service: string, count: MeshTlsCount) {
    this.#identity = identity;
    this.expected = expected;
    this.#service = service;
    this.#count = count;
    this.#unsubscribe = identity.onChange(() => (this.#sessions = new Map()));
  }

  /**
   * A new TLS connection to `host:port`: 'secureConnect' once verified; 'error' with a
   * MESHWORK_ERR_PROXY_UPSTREAM_TLS MeshError when the handshake or the identity check fails.
   */
  connect(host: string, port: number): TLSSocket {
    const key = `${host}:${port}`;
    const socket = tlsConnect({
      host,
      port,
      // The identity's context, read per connection (a renewal replaces it); its own minimum
      // version applies, so TLS 1.3 is checked on 'secureConnect'.
      secureContext: this.#identity.secureContext(),
      session: this.#sessions.get(key),
      // No SNI: peers are addressed by IP, and the check below is by SPIFFE ID.
      servername: '',
      // net.connect's option, which tls.connect passes on (not in its type).
      ...({ noDelay: true } as object),
      checkServerIdentity: (_host, cert) => this.#check(cert),
    });
    const sessions = this.#sessions;
    socket.on('session', (session: Buffer) => {
      if (sessions !== this.#sessions) return; // made with a context since replaced
      if (!sessions.has(key) && sessions.size >= MAX_SESSIONS) {
        const oldest = sessions.keys().next().value as string;
        sessions.delete(oldest);
      }
      sessions.set(key, session);
    });
    socket.once('secureConnect', () => {
      const protocol = socket.getProtocol();
      if (protocol !== 'TLSv1.3') {
        socket.destroy(
          errors.proxyUpstreamTls(
            this.#service,
            `the server spoke ${String(protocol)}, not TLSv1.3`,
          ),
        );
        return;
      }
      this.#secured.add(socket);
      this.#count('outbound', socket.isSessionReused() ? 'resumed' : 'mtls');
    });
    socket.prependOnceListener('error', (err: NodeJS.ErrnoException) => {
      if (this.#secured.has(socket)) return;
      // A session that led to a failed handshake is not offered again.
      this.#sessions.delete(key);
      if (!isMeshError(err) && tlsRefusal(socket, err) !== undefined)
        this.#count('outbound', 'handshake_failed', tlsRefusal(socket, err));
    });
    return socket;
  }

  /**
   * The error an attempt fails with for `err` on a socket of `connect`: a refused certificate
   * (the server's chain, validity, or SPIFFE ID) is a MESHWORK_ERR_PROXY_UPSTREAM_TLS (503);
   * a refused or reset connection stays itself (a connect error, retried as one).
   */
  failure(socket: TLSSocket, err: Error): Error {
    if (isMeshError(err) || this.#secured.has(socket)) return err;
    const refusal = tlsRefusal(socket, err);
    if (refusal === undefined) return err;
    return errors.proxyUpstreamTls(this.#service, refusal, err);
  }

  /** node's checkServerIdentity: undefined when the certificate's SPIFFE ID is the expected one. */
  #check(cert: PeerCertificate): Error | undefined {
    const uris = uriSans(cert.subjectaltname);
    if (uris.includes(this.expected)) return undefined;
    this.#count('outbound', 'identity_mismatch');
    return errors.proxyUpstreamTls(
      this.#service,
      `the server is ${uris.length === 0 ? 'no SPIFFE ID' : uris.join(', ')}, expected ${this.expected}`,
    );
  }

  close(): void {
    this.#unsubscribe();
  }
}

/**
 * Why a TLS handshake was refused, or undefined when `err` is not a TLS refusal (a refused or
 * reset connection: retried as a connect error). The server's certificate refused by this side
 * (authorizationError: CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...), or an alert or
 * protocol error of OpenSSL (ERR_SSL_*: the server refused this side's certificate, no TLS 1.3).
 */
function tlsRefusal(socket: TLSSocket, err: NodeJS.ErrnoException): string | undefined {
  const refused = socket.authorizationError as unknown;
  if (refused !== null && refused !== undefined)
    return `the server's certificate was refused (${String(refused)})`;
  if (err.code?.startsWith('ERR_SSL_') === true) return `the TLS handshake failed (${err.code})`;
  return undefined;
}
