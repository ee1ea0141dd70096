/** @module Small pieces shared by the dashboard's pages. */
import type { ComponentChildren } from 'preact';

/** A status word in its colour (passing green, warning amber, critical red...). */
export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge status-${status.toLowerCase()}`}>{status}</span>;
}

/** Where a live view stands: loading, its error, or nothing once it has data. */
export function Notice({
  error,
  children,
}: {
  error?: string | undefined;
  children?: ComponentChildren;
}) {
  if (error !== undefined) return <p class="error">{error}</p>;
  return children === undefined ? null : <p class="empty">{children}</p>;
}

/** A text input bound to a state: `value` in, every keystroke out through `onValue`. */
export function TextInput(props: {
  name: string;
  value: string;
  onValue: (value: string) => void;
  type?: 'text' | 'search' | 'password';
  placeholder?: string;
}) {
  return (
    <input
      name={props.name}
      // preact types `type` as a union with per-type roles; all three are text fields.
      type={(props.type ?? 'text') as 'text'}
      autocomplete="off"
      placeholder={props.placeholder}
      value={props.value}
      onInput={(e) => props.onValue(e.currentTarget.value)}
    />
  );
}
