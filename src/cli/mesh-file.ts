/**
 * @module Reading a multi-document YAML file for `meshwork apply`: its documents in order, with
 * their number in the file, empty ones skipped; a syntax error names the file, line and column.
 */
import { parseAllDocuments, type Document, type LineCounter } from 'yaml';
import { readTextFile } from '../config/config-sources.js';
import { errors } from '../core/errors.js';

/** One non-empty document of a file. */
export interface FileDocument {
  /** Its number in the file, from 1, counting empty documents too (what a reader counts). */
  readonly number: number;
  readonly value: unknown;
}

/** Aliases a document may expand, as the config file reader allows (a billion-laughs guard). */
const MAX_ALIAS_COUNT = 100;

/** `line L, column C: reason` of a YAML error (its first line, without yaml's own position). */
function located(message: string, pos: { line: number; col: number } | undefined): string {
  const reason = (message.split('\n')[0] ?? message)
    .replace(/ at line \d+, column \d+:?$/, '')
    .replace(/:$/, '');
  return pos === undefined ? reason : `line ${pos.line}, column ${pos.col}: ${reason}`;
}

/**
 * The documents of YAML `text` (read from `path`, named in errors). Throws
 * MESHWORK_ERR_CONFIG_UNREADABLE (exit 2) on the first syntax error.
 */
export function parseMeshFile(path: string, text: string): FileDocument[] {
  const docs = parseAllDocuments(text, { prettyErrors: true }) as
    Document.Parsed[] | { lineCounter?: LineCounter };
  if (!Array.isArray(docs)) return [];
  const out: FileDocument[] = [];
  docs.forEach((doc, i) => {
    const error = doc.errors[0];
    if (error !== undefined)
      throw errors.configUnreadable(path, located(error.message, error.linePos?.[0]), error);
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      throw errors.configUnreadable(path, `document ${i + 1}: ${(err as Error).message}`, err);
    }
    if (value !== null && value !== undefined) out.push({ number: i + 1, value });
  });
  return out;
}

/** Reads and splits `path` ({@link parseMeshFile}); an unreadable file is an exit 2 too. */
export function readMeshFile(path: string): FileDocument[] {
  return parseMeshFile(path, readTextFile(path));
}
