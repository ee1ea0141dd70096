/** @module Test helper: ACL tokens on a test agent started with ACLs on (bootstrap, then a token per policy). */
import assert from 'node:assert/strict';
import { http } from './agent.js';

/** Bootstraps the agent's ACLs; answers the management token's secret. */
export async function bootstrapAcl(url: string): Promise<string> {
  const boot = await http(url, 'PUT', '/v1/acl/bootstrap');
  assert.equal(boot.status, 200, boot.text);
  return boot.body.SecretID as string;
}

/** Creates policy `name` with `rules` (HCL) and a token holding it; answers the token's secret. */
export async function tokenWithRules(
  url: string,
  management: string,
  name: string,
  rules: string,
): Promise<string> {
  const admin = { 'x-consul-token': management };
  const policy = await http(url, 'PUT', '/v1/acl/policy', { Name: name, Rules: rules }, admin);
  assert.equal(policy.status, 200, policy.text);
  const token = await http(url, 'PUT', '/v1/acl/token', { Policies: [{ Name: name }] }, admin);
  assert.equal(token.status, 200, token.text);
  return token.body.SecretID as string;
}
