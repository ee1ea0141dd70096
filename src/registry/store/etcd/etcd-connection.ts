/**
 * @module How an agent reaches etcd: its endpoints, and optionally TLS (a CA to verify etcd's
 * certificate, a client certificate for etcd's `--client-cert-auth`) and etcd's password
 * authentication (`etcdctl auth enable`), as the etcd3 client takes them. Shared by the catalog
 * store and the cluster membership, which each hold a client.
 */
import type { IOptions } from 'etcd3';

export interface EtcdConnection {
  /** Client URLs; `https://` ones are reached over TLS. */
  readonly endpoints: readonly string[];
  /** PEM contents (not paths). */
  readonly tls?: {
    /** The CA that signed etcd's server certificate (default: the system's roots). */
    readonly caPem?: Buffer;
    /** A client certificate and its key, for an etcd that requires one. */
    readonly certPem?: Buffer;
    readonly keyPem?: Buffer;
  };
  /** etcd's own users (RBAC): the client exchanges these for a token. */
  readonly auth?: { readonly username: string; readonly password: string };
}

/** The etcd3 client options of a connection. */
export function etcdClientOptions(c: EtcdConnection): IOptions {
  const tls = c.tls;
  return {
    hosts: [...c.endpoints],
    ...(tls?.caPem === undefined
      ? {}
      : {
          credentials: {
            rootCertificate: tls.caPem,
            ...(tls.keyPem === undefined ? {} : { privateKey: tls.keyPem }),
            ...(tls.certPem === undefined ? {} : { certChain: tls.certPem }),
          },
        }),
    ...(c.auth === undefined
      ? {}
      : { auth: { username: c.auth.username, password: c.auth.password } }),
  };
}
