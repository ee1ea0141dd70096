/** @module Shared plumbing of the operator commands: flags, the client, output. */
import { createRegistryClient, type RegistryClient } from '../client/registry-client.js';
import { readTlsFiles, type RegistryTlsOptions } from '../client/tls-files.js';
import { errors } from '../core/errors.js';
import { registryAddresses, type Io } from './command.js';

/** The flags of CLIENT_FLAGS that say how to reach the agent, and as whom. */
export interface ClientFlags {
  readonly registry?: string | undefined;
  readonly token?: string | undefined;
  readonly 'registry-ca'?: string | undefined;
  readonly 'registry-cert'?: string | undefined;
  readonly 'registry-key'?: string | undefined;
}

/**
 * The TLS of an `https://` agent: --registry-ca, --registry-cert and --registry-key, else
 * $MESHWORK_CACERT, $MESHWORK_CLIENT_CERT and $MESHWORK_CLIENT_KEY (as $MESHWORK_ADDR stands
 * for --registry). The files are read now: a bad one is a CONFIG_INVALID naming its flag (exit 2).
 */
export function registryTls(flags: ClientFlags, env: NodeJS.ProcessEnv): RegistryTlsOptions {
  const files = {
    caFile: flags['registry-ca'] ?? (env.MESHWORK_CACERT || undefined),
    certFile: flags['registry-cert'] ?? (env.MESHWORK_CLIENT_CERT || undefined),
    keyFile: flags['registry-key'] ?? (env.MESHWORK_CLIENT_KEY || undefined),
  };
  const { material, problems } = readTlsFiles(files, {
    caFile: flags['registry-ca'] === undefined ? 'MESHWORK_CACERT' : '--registry-ca',
    certFile: flags['registry-cert'] === undefined ? 'MESHWORK_CLIENT_CERT' : '--registry-cert',
    keyFile: flags['registry-key'] === undefined ? 'MESHWORK_CLIENT_KEY' : '--registry-key',
  });
  if (problems.length > 0) throw errors.configInvalid(problems);
  return material;
}

/** Runs `fn` with a client for the agent, closing it afterwards. */
export async function withClient<T>(
  flags: ClientFlags,
  io: Io,
  fn: (client: RegistryClient) => Promise<T>,
): Promise<T> {
  // The ACL token: --token, else MESHWORK_TOKEN (as Consul's CLI reads CONSUL_HTTP_TOKEN).
  const token = flags.token ?? io.env.MESHWORK_TOKEN;
  const client = createRegistryClient({
    addresses: registryAddresses(flags.registry, io.env),
    tls: registryTls(flags, io.env),
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
