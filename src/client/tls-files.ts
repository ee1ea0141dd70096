/**
 * @module TLS material from PEM files (a CA bundle, a certificate chain, a private key), read and
 * checked before anything connects or listens: the agent's HTTPS listener and every client of
 * an `https://` registry (SDK, CLI, gateway, sidecar) load their files with this.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { errors } from '../core/errors.js';

/** PEM files: the CA(s) to trust, a certificate (leaf first, then its chain) and its key. */
export interface TlsFiles {
  readonly caFile?: string | undefined;
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
}

/** The PEM text of the files, as node's TLS options (`ca`, `cert`, `key`) take it. */
export interface TlsMaterial {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/** How each file is named in a problem: the option a user set (`--tls-cert-file`, `caFile`). */
export type TlsFileNames = Readonly<Record<keyof TlsFiles, string>>;

/** One PEM block: its label (`CERTIFICATE`, `PRIVATE KEY`...) and its DER bytes. */
export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

/** A label (RFC 7468 section 3): printable characters, single hyphens or spaces between them. */
const LABEL = String.raw`(?:[\x21-\x2c\x2e-\x7e](?:[- ]?[\x21-\x2c\x2e-\x7e])*)?`;
const BLOCK = new RegExp(`-----BEGIN (${LABEL})-----([\\s\\S]*?)-----END (${LABEL})-----`, 'g');
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The PEM blocks of `text` (RFC 7468): text between blocks (an `openssl x509 -text` dump, a
 * comment) is skipped; a block whose END label differs from its BEGIN, or whose body is not
 * base64 (headers such as `Proc-Type` of legacy encrypted keys are not), is an error naming it.
 * @example
 * parsePem(readFileSync('ca.pem', 'utf8')).filter((b) => b.label === 'CERTIFICATE');
 */
export function parsePem(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const [, label = '', body = '', end = ''] = m;
    if (end !== label) throw new Error(`a PEM block "${label}" ends with "${end}"`);
    const b64 = body.replace(/\s+/g, '');
    if (!BASE64.test(b64) || b64.length % 4 !== 0)
      throw new Error(`the PEM block "${label}" is not base64`);
    blocks.push({ label, der: Buffer.from(b64, 'base64') });
  }
  return blocks;
}

/** The certificates of a PEM text, parsed; a problem (string) when there is none or one is bad. */
function certificatesOf(text: string): X509Certificate[] | string {
  let blocks: PemBlock[];
  try {
    blocks = parsePem(text);
  } catch (err) {
    return (err as Error).message;
  }
  const certs = blocks.filter((b) => b.label === 'CERTIFICATE');
  if (certs.length === 0) return 'not a PEM certificate (no "BEGIN CERTIFICATE" block)';
  const parsed: X509Certificate[] = [];
  for (const [i, b] of certs.entries()) {
    try {
      parsed.push(new X509Certificate(b.der));
    } catch {
      return `certificate ${i + 1} of the file is not a valid X.509 certificate`;
    }
  }
  return parsed;
}

function keyOf(text: string): KeyObject | string {
  let blocks: PemBlock[];
  try {
    blocks = parsePem(text);
  } catch (err) {
    return (err as Error).message;
  }
  const keys = blocks.filter((b) => /PRIVATE KEY$/.test(b.label));
  if (keys.length === 0) return 'not a PEM private key (no "BEGIN ... PRIVATE KEY" block)';
  if (keys[0]?.label === 'ENCRYPTED PRIVATE KEY')
    return 'the key is encrypted: give it unencrypted (openssl pkey -in key.pem -out plain.pem)';
  try {
    return createPrivateKey(text);
  } catch (err) {
    return `not a valid private key (${(err as Error).message})`;
  }
}

/**
 * Reads and checks `files`: each must be readable PEM of the right kind, a certificate and a key
 * come together and must match. Answers the material and one problem per bad file, prefixed with
 * its name in `names` (`--tls-key-file: the key does not match the certificate of --tls-cert-file`);
 * no problem means the material is complete. Synchronous: it runs before a listener or client
 * starts.
 */
export function readTlsFiles(
  files: TlsFiles,
  names: TlsFileNames,
): { material: TlsMaterial; problems: string[] } {
  const problems: string[] = [];
  const read = (which: keyof TlsFiles): string | undefined => {
    const path = files[which];
    if (path === undefined) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      problems.push(`${names[which]}: cannot read ${path}: ${reason}`);
      return undefined;
    }
  };
  const ca = read('caFile');
  const cert = read('certFile');
  const key = read('keyFile');
  const bad = (which: keyof TlsFiles, reason: string): void => {
    problems.push(`${names[which]}: ${files[which] ?? ''}: ${reason}`);
  };
  if (ca !== undefined) {
    const certs = certificatesOf(ca);
    if (typeof certs === 'string') bad('caFile', certs);
  }
  const leaf = cert === undefined ? undefined : certificatesOf(cert);
  if (typeof leaf === 'string') bad('certFile', leaf);
  const privateKey = key === undefined ? undefined : keyOf(key);
  if (typeof privateKey === 'string') bad('keyFile', privateKey);
  if ((files.certFile === undefined) !== (files.keyFile === undefined)) {
    const missing = files.certFile === undefined ? 'certFile' : 'keyFile';
    const given = missing === 'certFile' ? 'keyFile' : 'certFile';
    problems.push(`${names[missing]}: required with ${names[given]}`);
  }
  if (Array.isArray(leaf) && typeof privateKey === 'object' && leaf[0] !== undefined) {
    if (!leaf[0].checkPrivateKey(privateKey))
      bad('keyFile', `the key does not match the certificate of ${names.certFile}`);
  }
  return {
    material: {
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
    },
    problems,
  };
}

/**
 * TLS of a client of `https://` registry addresses: the CA(s) to trust instead of the system's
 * roots (the agent's certificate's CA), and a client certificate for an agent that requires one
 * (`tls.verifyIncoming`). PEM text or files; a file is read once, when the client is made.
 */
export interface RegistryTlsOptions {
  /** PEM CA certificate(s) to trust. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /** PEM client certificate (leaf first, then its chain), with `key`. */
  readonly cert?: string | Buffer;
  /** PEM private key of `cert`. */
  readonly key?: string | Buffer;
  /** A file holding `ca`. */
  readonly caFile?: string;
  /** A file holding `cert`. */
  readonly certFile?: string;
  /** A file holding `key`. */
  readonly keyFile?: string;
}

/** What undici's `connect` option takes from {@link RegistryTlsOptions}. */
export interface RegistryConnectOptions {
  readonly ca?: string | Buffer | (string | Buffer)[];
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

const REGISTRY_TLS_NAMES: TlsFileNames = Object.freeze({
  caFile: 'tls.caFile',
  certFile: 'tls.certFile',
  keyFile: 'tls.keyFile',
});

/**
 * The `connect` options of a registry client's undici pools (none without `tls`): the PEM given,
 * or read from the files. Throws one CONFIG_INVALID listing every problem (a file missing or not
 * PEM, a key that is not the certificate's, text and file given for the same thing).
 */
export function registryConnectOptions(
  tls: RegistryTlsOptions | undefined,
): RegistryConnectOptions | undefined {
  if (tls === undefined) return undefined;
  const { material, problems } = readTlsFiles(tls, REGISTRY_TLS_NAMES);
  const pick = <T>(field: 'ca' | 'cert' | 'key', given: T | undefined): T | string | undefined => {
    if (given !== undefined && material[field] !== undefined)
      problems.push(`tls.${field}: give ${field} or ${field}File, not both`);
    return given ?? material[field];
  };
  const ca = pick('ca', tls.ca);
  const cert = pick('cert', tls.cert);
  const key = pick('key', tls.key);
  // A file given alone is readTlsFiles' problem already.
  const noFiles = tls.certFile === undefined && tls.keyFile === undefined;
  if (noFiles && (cert === undefined) !== (key === undefined))
    problems.push('tls.cert: a client certificate and its key go together (cert and key)');
  if (problems.length > 0) throw errors.configInvalid(problems);
  return {
    ...(ca === undefined
      ? {}
      : { ca: typeof ca === 'string' || Buffer.isBuffer(ca) ? ca : [...ca] }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  };
}

/** The registry TLS files of a proxy's options (the gateway's, the sidecar's). */
export interface RegistryTlsFileOptions {
  /** PEM CA the agents' HTTPS certificates are checked against (`--registry-ca`). */
  readonly registryCaFile?: string | undefined;
  /** PEM client certificate for agents that require one (`--registry-cert`). */
  readonly registryCertFile?: string | undefined;
  /** Its private key (`--registry-key`). */
  readonly registryKeyFile?: string | undefined;
}

/** How a proxy's registry TLS files are named in a problem: the option key and the flag. */
const PROXY_REGISTRY_TLS_NAMES: TlsFileNames = Object.freeze({
  caFile: 'registryCaFile (--registry-ca)',
  certFile: 'registryCertFile (--registry-cert)',
  keyFile: 'registryKeyFile (--registry-key)',
});

/** The files of `o` as a registry client's TLS, or undefined when none is set. */
export function registryTlsOf(o: RegistryTlsFileOptions): RegistryTlsOptions | undefined {
  const files = {
    ...(o.registryCaFile === undefined ? {} : { caFile: o.registryCaFile }),
    ...(o.registryCertFile === undefined ? {} : { certFile: o.registryCertFile }),
    ...(o.registryKeyFile === undefined ? {} : { keyFile: o.registryKeyFile }),
  };
  return Object.keys(files).length === 0 ? undefined : files;
}

/**
 * The problems of a proxy's registry TLS files (read and checked now, so a bad one fails the
 * start and `config validate` with its option named), and a CA given for no `https://` agent.
 */
export function registryTlsFileProblems(
  o: RegistryTlsFileOptions & { readonly registry: readonly string[] },
): string[] {
  const files = registryTlsOf(o);
  if (files === undefined) return [];
  const problems = readTlsFiles(files, PROXY_REGISTRY_TLS_NAMES).problems;
  if (!o.registry.some((u) => u.startsWith('https://')))
    problems.push('registryCaFile: TLS files are set, but no registry URL is https://');
  return problems;
}
