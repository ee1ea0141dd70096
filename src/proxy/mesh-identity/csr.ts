/**
 * @module A proxy's key and certificate signing request (issue 20): an EC P-256 key made in
 * this process with node's crypto, and a PKCS#10 CSR (RFC 2986) for the service's SPIFFE ID,
 * encoded by csr-asn1.ts (@peculiar's ASN.1 schemas) and signed here with node's crypto. A proxy
 * encodes in a short-lived child process (encodeInChildProcess): loading the schemas in process
 * costs ~12 MiB of RSS that the process keeps for good (V8's and malloc's, measured in
 * docs/benchmarks.md, "What a certificate costs a sidecar"), for one CSR a day. The private key
 * never leaves this process: the child gets the public key and returns the bytes to sign.
 */
import { fork } from 'node:child_process';
import { generateKeyPair, sign, type KeyObject } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const generateEcKeyPair = promisify(generateKeyPair);

/** A fresh key and a CSR for it. The key is PKCS#8 PEM, for `tls.createSecureContext`. */
export interface KeyAndCsr {
  /** The private key. MUST stay in memory: never logged, dumped, sent or written to disk. */
  readonly keyPem: string;
  readonly csrPem: string;
}

/** A CSR being encoded (csr-asn1.ts's CsrDraft, wherever it runs). */
export interface CsrEncoding {
  /** DER of the request info: what the key signs. */
  readonly info: Uint8Array;
  /** DER of the request around the signature (DER ECDSA-Sig-Value) of `info`. */
  signed(signature: Uint8Array): Promise<Uint8Array>;
  /** Frees what the encoding holds (its process); called once the CSR is made or failed. */
  close(): void;
  /** The process encoding it, when not this one. */
  readonly pid?: number | undefined;
}

/** Starts encoding a CSR for `spiffeId` and `service` around the public key `spki` (DER). */
export type CsrEncoder = (
  spiffeId: string,
  service: string,
  spki: Uint8Array,
) => Promise<CsrEncoding>;

/** DER as PEM with `label` (RFC 7468: base64 in lines of 64). */
export const derToPem = (label: string, der: ArrayBuffer | Uint8Array): string =>
  `-----BEGIN ${label}-----\n${(
    Buffer.from(
      der instanceof ArrayBuffer
        ? der
        : der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength),
    )
      .toString('base64')
      .match(/.{1,64}/g) ?? []
  ).join('\n')}\n-----END ${label}-----\n`;

/** Encodes in this process: it loads the ASN.1 schemas here (tests, tools). */
export const encodeInProcess: CsrEncoder = async (spiffeId, service, spki) => {
  const { draftCsr } = await import('./csr-asn1.js');
  const draft = draftCsr(spiffeId, service, spki);
  return { info: draft.info, signed: (s) => Promise.resolve(draft.signed(s)), close: () => {} };
};

/** The child's module: beside this one, built (.js) or run from source under tsx (.ts). */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const CHILD_MAIN = fileURLToPath(
  new URL(`./csr-process.${FROM_SOURCE ? 'ts' : 'js'}`, import.meta.url),
);
/** A child that has not answered by then is killed (its encoding fails). */
const CHILD_TIMEOUT_MS = 30_000;

interface ChildReply {
  readonly info?: Uint8Array;
  readonly csr?: Uint8Array;
  readonly error?: string;
}

/**
 * Encodes in a child process of node (csr-process.ts) that exits once the CSR is made, so the
 * ASN.1 schemas' memory leaves with it: what a proxy uses.
 */
export const encodeInChildProcess: CsrEncoder = async (spiffeId, service, spki) => {
  const child = fork(CHILD_MAIN, [], {
    // From source, tsx as this module resolves it (a bare `tsx` would resolve from the cwd).
    execArgv: FROM_SOURCE ? ['--import', import.meta.resolve('tsx')] : [],
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
  timer.unref();
  let waiting: { resolve(r: ChildReply): void; reject(e: Error): void } | undefined;
  const fail = (err: Error): void => {
    const w = waiting;
    waiting = undefined;
    w?.reject(err);
  };
  child.on('message', (r: ChildReply) => {
    const w = waiting;
    waiting = undefined;
    if (r.error !== undefined) w?.reject(new Error(`the CSR encoder failed: ${r.error}`));
    else w?.resolve(r);
  });
  child.on('error', fail);
  child.on('exit', (code, signal) => {
    clearTimeout(timer);
    fail(new Error(`the CSR encoder process ended (${signal ?? `exit ${code}`}) before answering`));
  });
  const ask = (message: object): Promise<ChildReply> =>
    new Promise((resolve, reject) => {
      waiting = { resolve, reject };
      child.send(message, (err) => {
        if (err !== null) fail(err);
      });
    });
  const close = (): void => {
    // The child exits when its channel closes.
    if (child.connected) child.disconnect();
  };
  try {
    const { info } = await ask({ spiffeId, service, spki });
    if (!(info instanceof Uint8Array)) throw new Error('the CSR encoder answered no request info');
    return {
      info,
      signed: async (signature) => {
        const { csr } = await ask({ signature });
        if (!(csr instanceof Uint8Array)) throw new Error('the CSR encoder answered no request');
        return csr;
      },
      close,
      pid: child.pid,
    };
  } catch (err) {
    close();
    throw err;
  }
};

/** A fresh EC P-256 key pair (node's KeyObjects). */
async function p256(): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  return generateEcKeyPair('ec', { namedCurve: 'P-256' });
}

/**
 * Makes a key and a CSR whose subject is `CN=<service>` and whose URI SAN is the SPIFFE ID (the
 * agent decides the leaf's names; it uses only the CSR's public key), encoded by `encode`: by
 * default in a child process, as a proxy must (tests pass encodeInProcess, which skips a fork).
 */
export async function createKeyAndCsr(
  spiffeId: string,
  service: string,
  encode: CsrEncoder = encodeInChildProcess,
): Promise<KeyAndCsr> {
  const { publicKey, privateKey } = await p256();
  const encoding = await encode(
    spiffeId,
    service,
    publicKey.export({ type: 'spki', format: 'der' }),
  );
  try {
    // node signs ECDSA as the DER ECDSA-Sig-Value X.509 and PKCS#10 carry (dsaEncoding 'der').
    const csr = await encoding.signed(sign('sha256', encoding.info, privateKey));
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    return { keyPem, csrPem: derToPem('CERTIFICATE REQUEST', csr) };
  } finally {
    encoding.close();
  }
}
