/** @module The shape every CLI command shares, and the I/O it is given. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { errors } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

export interface Io {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
}

export interface Command {
  readonly name: string;
  readonly synopsis: string;
  readonly help: string;
  /** Returns the exit code: 0 ok, 1 failure, 2 usage. */
  run(argv: readonly string[], io: Io): Promise<number>;
}

/** node:util parseArgs, turning its errors into CLI usage errors. */
export function parseFlags<T extends ParseArgsConfig['options']>(
  argv: readonly string[],
  options: T,
  allowPositionals = true,
): ReturnType<
  typeof parseArgs<{ options: T; allowPositionals: boolean; strict: true; args: string[] }>
> {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals, strict: true });
  } catch (err) {
    throw errors.cliUsage((err as Error).message);
  }
}

/** The TLS of an `https://` agent: the CA to trust, a client certificate and its key (PEM). */
export const REGISTRY_TLS_FLAGS = {
  'registry-ca': { type: 'string' },
  'registry-cert': { type: 'string' },
  'registry-key': { type: 'string' },
} as const;

/** The options the gateway and the sidecar set from {@link REGISTRY_TLS_FLAGS} (`pickFlags`). */
export const REGISTRY_TLS_OPTION_KEYS = {
  'registry-ca': 'registryCaFile',
  'registry-cert': 'registryCertFile',
  'registry-key': 'registryKeyFile',
} as const;

/** Flags every client command takes. */
export const CLIENT_FLAGS = {
  registry: { type: 'string' },
  /** The ACL token (else $MESHWORK_TOKEN): withClient sends it. */
  token: { type: 'string' },
  ...REGISTRY_TLS_FLAGS,
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The agent address: --registry, else MESHWORK_ADDR, else the default. */
export function registryAddresses(flag: string | undefined, env: NodeJS.ProcessEnv): string[] {
  const raw = flag ?? env.MESHWORK_ADDR ?? 'http://127.0.0.1:8500';
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => (/^https?:\/\//.test(s) ? s : `http://${s}`));
}

/** Renders rows as an aligned text table. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/**
 * The end of every long-running command: on the first SIGTERM or SIGINT, runs `stop` and exits
 * 0 once it resolves (1 if it rejects). `stop` owns its drain deadline.
 */
export function exitOnSignal(
  logger: Logger,
  stop: (signal: string) => Promise<unknown>,
): Promise<number> {
  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const onSignal = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      stop(signal).then(
        () => resolveExit(0),
        (err: unknown) => {
          logger.error({ err }, 'error while stopping');
          resolveExit(1);
        },
      );
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  });
}

/**
 * On SIGHUP, resolves the config again (`load`) and hands the result to `apply`; a config that
 * does not resolve goes to `refused`, and the running one stays. Without a config file there is
 * nothing to re-read (the environment of a running process does not change), which is logged.
 */
export function reloadOnSighup<T>(
  logger: Logger,
  file: string | undefined,
  load: () => T,
  apply: (next: T) => void,
  refused: (err: unknown) => void,
): void {
  process.on('SIGHUP', () => {
    if (file === undefined) {
      logger.info({}, 'SIGHUP: no config file to reload');
      return;
    }
    let next: T;
    try {
      next = load();
    } catch (err) {
      refused(err);
      return;
    }
    apply(next);
  });
}

/** The sources a command resolves its options from: the config file (if any), env and flags. */
export function configInput(
  file: string | undefined,
  env: NodeJS.ProcessEnv,
  flags: Record<string, unknown> = {},
): { file?: string; env: NodeJS.ProcessEnv; flags: Record<string, unknown> } {
  return { ...(file === undefined ? {} : { file }), env, flags };
}

/** How one flag becomes an option: the option's key, or the key and a conversion of the value. */
export type FlagTarget<V> = string | readonly [key: string, convert: (value: V) => unknown];

/** For each flag of `V` (parseArgs' values) that becomes an option, its target. */
export type FlagTargets<V> = { readonly [F in keyof V]?: FlagTarget<Exclude<V[F], undefined>> };

/** The options `pickFlags` answers: one optional key per target, typed by its conversion. */
export type PickedFlags<V, N> = {
  -readonly [
    F in keyof N & keyof V as N[F] extends string
      ? N[F]
      : N[F] extends readonly [infer K extends string, unknown]
        ? K
        : never
  ]?: N[F] extends readonly [string, (value: never) => infer R] ? R : Exclude<V[F], undefined>;
};

/** A flag's value as a number when it reads as one (`0.25`); else as given, for the schema to name. */
export const numberOrText = (v: string): number | string =>
  v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v;

/**
 * The flags that were given, as options: `names` maps each flag to its option key
 * (`{ 'log-level': 'logLevel' }`), or to a key and a conversion that may throw a usage error
 * (`{ 'etcd-endpoints': ['etcdEndpoints', (v) => v.split(',')] }`). Flags left out of the
 * command line are left out here; conversions run in the order `names` lists them. Every
 * command turns its flags into options (config, a request, a query) with this.
 * @example
 * const flags = pickFlags(values, { http: 'http', 'data-dir': 'dataDir' });
 * resolveAgentOptions(configInput(values.config, io.env, flags));
 */
export function pickFlags<
  V extends Readonly<Record<string, unknown>>,
  const N extends FlagTargets<V>,
>(values: V, names: N): PickedFlags<V, N> {
  const out: Record<string, unknown> = {};
  for (const [flag, target] of Object.entries(names) as [string, FlagTarget<unknown>][]) {
    const value = values[flag];
    if (value === undefined) continue;
    if (typeof target === 'string') out[target] = value;
    else out[target[0]] = target[1](value);
  }
  return out as PickedFlags<V, N>;
}
