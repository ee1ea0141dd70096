/** @module Test helper: a Logger that keeps every line (debug dropped), to assert on what was logged. */
import type { LogFields, Logger } from '../../src/core/logger.js';

/** One line logged. */
export interface LoggedLine {
  readonly level: 'error' | 'warn' | 'info';
  readonly fields: LogFields;
  readonly msg: string;
}

/** A logger (its children log to the same lines) and the lines it kept, in order. */
export function recordingLogger(): { logger: Logger; lines: LoggedLine[] } {
  const lines: LoggedLine[] = [];
  const logger: Logger = {
    error: (fields, msg) => lines.push({ level: 'error', fields, msg }),
    warn: (fields, msg) => lines.push({ level: 'warn', fields, msg }),
    info: (fields, msg) => lines.push({ level: 'info', fields, msg }),
    debug: () => undefined,
    child: () => logger,
  };
  return { logger, lines };
}
