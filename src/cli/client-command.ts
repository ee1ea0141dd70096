/** @module Shared plumbing of the operator commands: flags, the client, output. */
import { createRegistryClient, type RegistryClient } from '../client/registry-client.js';
import { registryAddresses, type Io } from './command.js';

/** Runs `fn` with a client for the agent, closing it afterwards. */
export async function withClient<T>(
  flags: { registry?: string | undefined; token?: string | undefined },
  io: Io,
  fn: (client: RegistryClient) => Promise<T>,
): Promise<T> {
  // The ACL token: --token, else MESHWORK_TOKEN (as Consul's CLI reads CONSUL_HTTP_TOKEN).
  const token = flags.token ?? io.env.MESHWORK_TOKEN;
  const client = createRegistryClient({
    addresses: registryAddresses(flags.registry, io.env),
    ...(token === undefined || token === '' ? {} : { token }),
  });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

export function printJson(io: Io, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
