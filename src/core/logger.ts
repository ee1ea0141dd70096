/** @module Logger: the structured logging interface components receive (pino-backed in telemetry/). */

export type LogFields = Record<string, unknown>;

/** Structured logger: constant message, structured fields. */
export interface Logger {
  error(fields: LogFields, msg: string): void;
  warn(fields: LogFields, msg: string): void;
  info(fields: LogFields, msg: string): void;
  debug(fields: LogFields, msg: string): void;
  /**
   * A logger whose lines also carry `bindings`. A key the parent already binds is replaced, not
   * repeated: a line holds one `component` key, the innermost child's.
   */
  child(bindings: LogFields): Logger;
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  child: () => silentLogger,
};
