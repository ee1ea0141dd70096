/** @module hostPortSchema: the one schema of a listen address (`host:port`, `[v6]:port`). */
import { z } from 'zod';

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
const HOST_PORT_OR_OFF = /^(off|(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5})$/;

/**
 * A listen address as options take it: `host:port` or `[v6]:port`, port 0-65535 (0 picks a free
 * one), or also `"off"` with `orOff`. `example` is the component's default, shown in the message
 * ("must be host:port (e.g. 127.0.0.1:8500)"). It lives in protocol/ so that every layer that
 * has options (dns/ and gateway/ included) may import it.
 *
 * @example
 * const listen = hostPortSchema('127.0.0.1:8600', { orOff: true });
 */
export function hostPortSchema(
  example: string,
  { orOff = false }: { readonly orOff?: boolean } = {},
): z.ZodString {
  return z
    .string()
    .regex(
      orOff ? HOST_PORT_OR_OFF : HOST_PORT,
      `must be host:port (e.g. ${example})${orOff ? ' or "off"' : ''}`,
    )
    .refine(
      (s) => (orOff && s === 'off') || Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535,
      'port must be 0-65535',
    );
}
