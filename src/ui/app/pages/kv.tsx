/**
 * @module The KV browser and editor: every key (live: a blocking `?recurse` read), one key's
 * value to edit, save (PUT, raw) or delete, and new keys.
 */
import { useState } from 'preact/hooks';
import { call, messageOf, useBlocking } from '../api.js';
import { Notice, TextInput } from '../parts.js';
import type { KvEntry } from '../types.js';

/** The key in a URL path: each segment encoded, the slashes kept. */
const keyPath = (key: string): string => key.split('/').map(encodeURIComponent).join('/');

function decode(base64: string): string {
  return new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
}

type Note = { ok: boolean; text: string } | undefined;

function Editor(props: {
  entry: KvEntry | undefined;
  selected: string;
  onNote: (n: Note) => void;
}) {
  const { entry, selected, onNote: setNote } = props;
  const [key, setKey] = useState(selected);
  const [value, setValue] = useState(entry === undefined ? '' : decode(entry.value));
  const [busy, setBusy] = useState(false);
  const run = async (what: () => Promise<string>): Promise<void> => {
    setBusy(true);
    setNote(undefined);
    try {
      setNote({ ok: true, text: await what() });
    } catch (err) {
      setNote({ ok: false, text: messageOf(err) });
    } finally {
      setBusy(false);
    }
  };
  const save = (): Promise<void> =>
    run(async () => {
      const r = await call<{ index: number }>('PUT', `/api/v1/kv/${keyPath(key)}`, {
        body: value,
        contentType: 'text/plain; charset=utf-8',
      });
      if (key !== selected) location.hash = `#/kv/${keyPath(key)}`;
      return `Saved ${key} (index ${r.body.index}).`;
    });
  const remove = (): Promise<void> =>
    run(async () => {
      await call('DELETE', `/api/v1/kv/${keyPath(key)}`);
      location.hash = '#/kv';
      return `Deleted ${key}.`;
    });
  return (
    <form
      class="editor"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <TextInput
        name="key"
        placeholder="key, e.g. config/orders/timeout"
        value={key}
        onValue={setKey}
      />
      <textarea name="value" value={value} onInput={(e) => setValue(e.currentTarget.value)} />
      {entry !== undefined && (
        <span class="muted">
          flags {entry.flags} · created at index {entry.createIndex} · modified at index{' '}
          {entry.modifyIndex}
        </span>
      )}
      <div class="row">
        <button type="submit" disabled={busy || key === ''}>
          Save
        </button>
        {entry !== undefined && (
          <button type="button" class="danger" disabled={busy} onClick={() => void remove()}>
            Delete
          </button>
        )}
      </div>
    </form>
  );
}

export function KvPage({ selected }: { selected: string }) {
  const { data, error } = useBlocking<{ entries: KvEntry[] }>('/api/v1/kv/?recurse');
  const entries = data?.entries;
  // Kept here: a save reloads the editor (its entry's version changed) and the note stays.
  const [note, setNote] = useState<Note>(undefined);
  const entry = entries?.find((e) => e.key === selected);
  return (
    <section>
      <div class="toolbar">
        <h1>Key/Value</h1>
        <a href="#/kv">New key</a>
      </div>
      <Notice error={error} />
      {entries === undefined ? (
        <Notice>Loading keys…</Notice>
      ) : (
        <div class="split">
          <div class="list" data-testid="kv-keys">
            {entries.length === 0 && <p class="empty">No keys.</p>}
            {entries.map((e) => (
              <a
                href={`#/kv/${keyPath(e.key)}`}
                class={e.key === selected ? 'active' : ''}
                data-key={e.key}
              >
                {e.key}
              </a>
            ))}
          </div>
          {/* Keyed by the entry's version: a change from elsewhere reloads the form. */}
          <div>
            <Editor
              key={`${selected}@${entry?.modifyIndex ?? 0}`}
              entry={entry}
              selected={selected}
              onNote={setNote}
            />
            {note !== undefined && (
              <p class={note.ok ? 'ok' : 'error'} data-testid="note">
                {note.text}
              </p>
            )}
          </div>
        </div>
      )}
    </section>
  );
}
