/**
 * @module Cleanup for benchmark processes: child processes and temp dirs are released on success,
 * on failure, on Ctrl-C and (best effort, synchronously) on any exit.
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Task = () => Promise<void> | void;

const tasks: Task[] = [];
/** Pids and dirs the synchronous `exit` fallback still has to release. */
const livePids = new Set<number>();
const liveDirs = new Set<string>();

process.on('exit', () => {
  // Last resort when the async cleanup could not run (process.exit from elsewhere, a crash).
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
});

/** Registers `fn` to run at cleanup (last registered runs first). Returns an unregister. */
export function onCleanup(fn: Task): () => void {
  tasks.push(fn);
  return () => {
    const i = tasks.lastIndexOf(fn);
    if (i >= 0) tasks.splice(i, 1);
  };
}

/** Tracks a child pid for the synchronous exit fallback; returns the untrack. */
export function trackPid(pid: number): () => void {
  livePids.add(pid);
  return () => livePids.delete(pid);
}

/** A fresh temp dir (`/tmp/meshwork-bench-<name>-XXXX`), removed at cleanup. */
export async function makeTempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `meshwork-bench-${name}-`));
  liveDirs.add(dir);
  onCleanup(() => {
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  });
  return dir;
}

/** Runs every registered cleanup task once, newest first; errors are reported, not thrown. */
export async function runCleanup(): Promise<void> {
  while (tasks.length > 0) {
    const fn = tasks.pop();
    try {
      await fn?.();
    } catch (err) {
      console.error(`cleanup: ${(err as Error).message}`);
    }
  }
}

/**
 * Runs a benchmark's main function, then cleans up and exits: 0 on success, 1 on error, 130 on
 * SIGINT/SIGTERM.
 */
export function runMain(fn: () => Promise<void>): void {
  let exiting = false;
  const finish = async (code: number): Promise<void> => {
    if (exiting) return;
    exiting = true;
    await runCleanup();
    process.exit(code);
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: cleaning up`);
      void finish(130);
    });
  }
  fn().then(
    () => finish(0),
    (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
      void finish(1);
    },
  );
}
