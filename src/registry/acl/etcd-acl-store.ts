/**
 * @module The ACL store of cluster mode: one etcd key (see acl-store.ts). Its own module so that
 * an agent that is not in cluster mode never loads etcd3.
 */
import { Etcd3 } from 'etcd3';
import { errors } from '../../core/errors.js';
import { etcdClientOptions, type EtcdConnection } from '../store/etcd/etcd-connection.js';
import type { AclDocument, AclStore } from './acl-store.js';

/**
 * The etcd store (cluster mode): the key `<prefix>acl/document`, replaced in a transaction that
 * compares its mod revision, so every agent sees the same tokens. The secrets are as safe as etcd
 * is: run it with TLS and auth (docs/security.md).
 */
export function createEtcdAclStore(
  options: EtcdConnection & { readonly prefix: string },
): AclStore {
  // The catalog store's connection (TLS, etcd auth): the tokens live in the same etcd.
  const client = new Etcd3(etcdClientOptions(options));
  const key = `${options.prefix}acl/document`;
  const unavailable = (err: unknown) => errors.storeUnavailable(`etcd: ${(err as Error).message}`);
  return {
    kind: 'etcd',
    load: async () => {
      try {
        const r = await client.get(key).exec();
        const kv = r.kvs[0];
        if (kv === undefined) return { doc: undefined, version: 0 };
        return {
          doc: JSON.parse(kv.value.toString('utf8')) as AclDocument,
          version: Number(kv.mod_revision),
        };
      } catch (err) {
        throw unavailable(err);
      }
    },
    save: async (doc, version) => {
      try {
        const r = await client
          .if(key, 'Mod', '==', version)
          .then(client.put(key).value(JSON.stringify(doc)))
          .commit();
        return r.succeeded;
      } catch (err) {
        throw unavailable(err);
      }
    },
    close: async () => {
      client.close();
      return Promise.resolve();
    },
  };
}
