/**
 * @module The wire shapes of the Consul ACL endpoints (`/v1/acl/token`, `/v1/acl/policy`), as
 * Consul 1.4+ answers them; the agent answers them and the SDK's ACL calls read them.
 */

/** A token's link to a policy. */
export interface ConsulAclPolicyLink {
  readonly ID: string;
  readonly Name: string;
}

/** A token, as `/v1/acl/token` and `/v1/acl/bootstrap` answer it. */
export interface ConsulAclToken {
  readonly AccessorID: string;
  /** The secret to send as X-Consul-Token; `<hidden>` to a reader without `acl write`. */
  readonly SecretID: string;
  readonly Description: string;
  readonly Policies: readonly ConsulAclPolicyLink[];
  readonly Local: boolean;
  readonly CreateTime: string;
  readonly Hash: string;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
}

/** A policy, as `/v1/acl/policy` answers it (lists leave `Rules` out). */
export interface ConsulAclPolicy {
  readonly ID: string;
  readonly Name: string;
  readonly Description: string;
  readonly Rules?: string;
  readonly Datacenters: readonly string[] | null;
  readonly Hash: string;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
}
