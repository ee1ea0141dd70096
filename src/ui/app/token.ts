/**
 * @module The ACL token the dashboard sends (docs/ui.md, "Tokens"): kept in sessionStorage (gone
 * with the tab), asked for when a read is refused with 403.
 */
const KEY = 'meshwork.token';

type Listener = () => void;
const listeners = new Set<Listener>();
let refusal: string | undefined;

/** The token to send, '' for none. */
export function token(): string {
  return sessionStorage.getItem(KEY) ?? '';
}

/** Keeps `secret` for this tab ('' forgets it) and tells the app to read everything again. */
export function setToken(secret: string): void {
  if (secret === '') sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, secret);
  refusal = undefined;
  for (const l of listeners) l();
}

/** The message of the read the agent refused, while the token dialog is open. */
export function tokenRefusal(): string | undefined {
  return refusal;
}

/** A read was refused (403): open the token dialog with the agent's message. */
export function signalTokenNeeded(message: string): void {
  if (refusal === message) return;
  refusal = message;
  for (const l of listeners) l();
}

/** Calls `listener` when the token or the refusal changes; returns the unsubscribe. */
export function onTokenChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
