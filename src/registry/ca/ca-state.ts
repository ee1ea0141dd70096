/**
 * @module The mesh CA's stored state: its roots (certificate and private key) and which one is
 * active, as one JSON value under a reserved key, written with compare-and-set so agents
 * sharing a store agree on it (first writer wins; one rotation or retirement at a time).
 */
import { z } from 'zod';
import type { RootMaterial } from './ca-certificates.js';

/** The reserved KV key of the state (RESERVED_KV_PREFIX: hidden from every KV API). */
export const CA_STATE_KEY = '\u0000mesh-ca/state';

/** A root as stored: its material, and when it leaves the bundle if it is being retired. */
export interface StoredRoot extends RootMaterial {
  /** Epoch ms; set on the roots a rotation replaced. */
  readonly retiresAtMs?: number;
}

export interface CaState {
  /** The trust domain of the agent that made the first root. */
  readonly trustDomain: string;
  readonly activeRootId: string;
  /** The active root first, then the ones being retired (oldest last). */
  readonly roots: readonly StoredRoot[];
}

const storedRootSchema = z
  .object({
    id: z.string().regex(/^[0-9a-f]{64}$/),
    certPem: z.string().min(1),
    keyPem: z.string().min(1),
    notBeforeMs: z.number().int(),
    notAfterMs: z.number().int(),
    retiresAtMs: z.number().int().optional(),
  })
  .strict();

const stateSchema = z
  .object({
    version: z.literal(1),
    trustDomain: z.string().min(1),
    activeRootId: z.string(),
    roots: z.array(storedRootSchema).min(1),
  })
  .strict()
  .refine((s) => s.roots[0]?.id === s.activeRootId, 'the active root must come first');

export function encodeCaState(state: CaState): Uint8Array {
  return Buffer.from(JSON.stringify({ version: 1, ...state }), 'utf8');
}

/** The stored state, or a description of what is wrong with it. */
export function decodeCaState(value: Uint8Array): CaState | { readonly problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(value).toString('utf8'));
  } catch {
    return { problem: 'not JSON' };
  }
  const parsed = stateSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { problem: `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}` };
  }
  const { version: _version, ...state } = parsed.data;
  return state;
}
