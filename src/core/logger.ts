/** @module Logger: the structured logging interface components receive (pino satisfies it). */

export type LogFields = Record<string, unknown>;

/** Structured logger: constant message, structured fields. */
export interface Logger {
  error(fields: LogFields, msg: string): void;
  warn(fields: LogFields, msg: string): void;
  info(fields: LogFields, msg: string): void;
  debug(fields: LogFields, msg: string): void;
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
