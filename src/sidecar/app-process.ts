/**
 * @module AppProcess: the app a sidecar runs (`-- CMD ARGS...`). Spawned with the sidecar's
 * outbound address in `MESHWORK_OUTBOUND` (no `HTTP_PROXY`: see docs/sidecar.md), stdio
 * inherited; stopped with SIGTERM, then SIGKILL after a deadline; its exit as a shell reports
 * it (a signal n is 128 + n).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { systemClock, type Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';

export interface AppProcessOptions {
  /** The command and its arguments. */
  readonly command: readonly string[];
  /** Added to the sidecar's own environment. */
  readonly env: Readonly<Record<string, string>>;
  readonly logger?: Logger;
  readonly clock?: Clock;
}

/** How the app ended. */
export interface AppExit {
  /** The exit code as a shell reports it: the code, or 128 + the signal's number. */
  readonly code: number;
  readonly signal: NodeJS.Signals | null;
}

/** The exit code a shell reports for a process that ended with `code` or `signal`. */
export function shellExitCode(code: number | null, signal: NodeJS.Signals | null): number {
  if (signal !== null) return 128 + (constants.signals[signal] ?? 0);
  return code ?? 1;
}

/** A running app. */
export class AppProcess {
  readonly #child: ChildProcess;
  readonly #log: Logger;
  readonly #clock: Clock;
  /** Resolves once the app has exited (never rejects: a failed spawn is exit 127). */
  readonly exited: Promise<AppExit>;
  #exit: AppExit | undefined;

  constructor(options: AppProcessOptions) {
    const [file, ...args] = options.command;
    if (file === undefined) throw new TypeError('AppProcess: an empty command');
    this.#log = (options.logger ?? silentLogger).child({ component: 'app-process' });
    this.#clock = options.clock ?? systemClock;
    this.#child = spawn(file, args, {
      env: { ...process.env, ...options.env },
      stdio: 'inherit',
      // A process group of its own: a Ctrl-C in the terminal reaches the sidecar only, which
      // deregisters and drains before it signals the app (the order the lifecycle promises).
      detached: true,
    });
    this.exited = new Promise<AppExit>((resolve) => {
      const done = (exit: AppExit): void => {
        if (this.#exit !== undefined) return;
        this.#exit = exit;
        resolve(exit);
      };
      this.#child.once('error', (err) => {
        // ENOENT and EACCES: the shell's "command not found" / "not executable".
        this.#log.error({ command: file, err }, 'cannot start the app');
        done({ code: (err as NodeJS.ErrnoException).code === 'EACCES' ? 126 : 127, signal: null });
      });
      this.#child.once('exit', (code, signal) =>
        done({ code: shellExitCode(code, signal), signal }),
      );
    });
    this.#log.info({ command: options.command, pid: this.#child.pid }, 'app started');
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Whether the app has exited. */
  get done(): boolean {
    return this.#exit !== undefined;
  }

  /**
   * Sends SIGTERM (or `signal`), and SIGKILL if the app is still running after `timeoutMs`;
   * resolves with its exit.
   */
  async stop(timeoutMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<AppExit> {
    if (this.#exit !== undefined) return this.#exit;
    this.#child.kill(signal);
    const timer = this.#clock.setTimeout(() => {
      if (this.#exit !== undefined) return;
      this.#log.warn({ pid: this.#child.pid, timeoutMs }, 'app did not stop in time: SIGKILL');
      this.#child.kill('SIGKILL');
    }, timeoutMs);
    const exit = await this.exited;
    this.#clock.clearTimeout(timer);
    return exit;
  }
}
