/**
 * @module Orchestrator sync configuration (`meshwork sync docker`): one schema for the file, env
 * and flags; precedence defaults < file < env < flags; every problem listed in one error.
 */
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { z } from 'zod';
import {
  mergeSections,
  readOptionSources,
  type EnvKey,
  type OptionSources,
} from '../config/config-sources.js';
import { validateOptions } from '../config/validate-options.js';
import { registryTlsFileProblems } from '../client/tls-files.js';
import { hostPortSchema } from '../protocol/host-port.js';

/** Node names become part of the apply set (`docker:<node>`) and of each instance's meta. */
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export const syncOptionsSchema = z
  .object({
    /** The Docker daemon: `unix:///var/run/docker.sock`, `tcp://host:2375`. */
    docker: z
      .string()
      .regex(/^(unix:\/\/\/|tcp:\/\/|https?:\/\/)\S+$/, 'must be unix:///path or tcp://host:port'),
    /** Agent URLs (any of them answers). */
    registry: z.array(z.string().url('must be a URL like http://127.0.0.1:8500')).min(1),
    registryCaFile: z.string().min(1).optional(),
    registryCertFile: z.string().min(1).optional(),
    registryKeyFile: z.string().min(1).optional(),
    /** ACL token sent to the agent; with ACLs on it must allow writing the services synced. */
    token: z.string().min(1).max(256).optional(),
    /** The prefix of the labels read (`meshwork.service` ...). */
    labelPrefix: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{0,64}$/, 'must be letters, digits, _ . - (at most 64)'),
    /** This host's name: the apply set is `docker:<nodeName>`, so syncs on other hosts keep theirs. */
    nodeName: z.string().regex(NODE_NAME, 'must be a host name: letters, digits, _ . -'),
    /** The address registered for host-network containers and ports published on 0.0.0.0. */
    address: z
      .string()
      .refine(
        (a) => isIP(a) !== 0 || /^[A-Za-z0-9.-]{1,253}$/.test(a),
        'must be an IP or host name',
      ),
    /** `/live`, `/ready`, `/metrics`; `off` serves none. */
    admin: hostPortSchema('127.0.0.1:15090', { orOff: true }),
    /** Wait before retrying an apply the agent did not take. */
    retryMs: z.number().int().min(10).max(600_000),
    logLevel: z.enum(['error', 'warn', 'info', 'debug', 'silent']),
  })
  .strict();

export type SyncOptions = z.output<typeof syncOptionsSchema>;

export const DEFAULT_SYNC_OPTIONS = Object.freeze({
  docker: 'unix:///var/run/docker.sock',
  registry: Object.freeze(['http://127.0.0.1:8500']),
  labelPrefix: 'meshwork.',
  address: '127.0.0.1',
  admin: 'off',
  retryMs: 1_000,
  logLevel: 'info',
});

const ENV_KEYS: Readonly<Record<string, EnvKey>> = {
  MESHWORK_SYNC__DOCKER: { key: 'docker', type: 'string' },
  MESHWORK_SYNC__REGISTRY: { key: 'registry', type: 'list' },
  MESHWORK_SYNC__REGISTRY_CA_FILE: { key: 'registryCaFile', type: 'string' },
  MESHWORK_SYNC__REGISTRY_CERT_FILE: { key: 'registryCertFile', type: 'string' },
  MESHWORK_SYNC__REGISTRY_KEY_FILE: { key: 'registryKeyFile', type: 'string' },
  MESHWORK_SYNC__TOKEN: { key: 'token', type: 'string' },
  MESHWORK_SYNC__LABEL_PREFIX: { key: 'labelPrefix', type: 'string' },
  MESHWORK_SYNC__NODE_NAME: { key: 'nodeName', type: 'string' },
  MESHWORK_SYNC__ADDRESS: { key: 'address', type: 'string' },
  MESHWORK_SYNC__ADMIN: { key: 'admin', type: 'string' },
  MESHWORK_SYNC__RETRY_MS: { key: 'retryMs', type: 'number' },
  MESHWORK_SYNC__LOG_LEVEL: { key: 'logLevel', type: 'string' },
};

/** The env vars the sync reads (for its help). */
export const SYNC_ENV_VARS = Object.keys(ENV_KEYS);

/**
 * Resolves the sync's options: defaults < config file < env < flags. Throws one CONFIG_INVALID
 * listing every problem, before anything connects.
 */
export function resolveSyncOptions(input: OptionSources): SyncOptions {
  const { file, env, flags } = readOptionSources(input, ENV_KEYS);
  const merged = mergeSections(
    { ...DEFAULT_SYNC_OPTIONS, nodeName: hostname().split('.')[0] ?? 'localhost' },
    file,
    env.values,
    flags,
  );
  return validateOptions(syncOptionsSchema, merged, env.problems, registryTlsFileProblems);
}

/** The apply set a sync owns: `<source kind>:<node name>`. */
export const syncSetName = (kind: string, nodeName: string): string => `${kind}:${nodeName}`;
