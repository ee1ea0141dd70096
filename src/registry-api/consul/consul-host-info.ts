/**
 * @module consulHostInfo: what Consul's `GET /v1/agent/host` answers (its debug.HostInfo:
 * `Memory`, `CPU`, `Host`, `Disk`, `CollectionTime`, `Errors`, with gopsutil's lower-camel field
 * names), from Node's `os` module and `fs.statfs` of `/`. Fields gopsutil reads and Node cannot
 * (cached and buffer memory, CPU flags, process count...) are left out rather than made up.
 */
import { readFile, statfs } from 'node:fs/promises';
import os from 'node:os';

/** Consul (gopsutil) measures the disk of `/`. */
const DISK_PATH = '/';

const percent = (part: number, whole: number): number => (whole > 0 ? (part / whole) * 100 : 0);

/**
 * The `KEY=value` lines of an os-release file (freedesktop.org's os-release(5)): values
 * unquoted when double- or single-quoted; other lines (comments, blanks) skipped.
 */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (m?.[1] === undefined || m[2] === undefined) continue;
    out[m[1]] = m[2].replace(/^"(.*)"$|^'(.*)'$/, '$1$2');
  }
  return out;
}

/** /etc/os-release, parsed: its `ID`, `ID_LIKE` and `VERSION_ID` are gopsutil's platform fields. */
async function osRelease(): Promise<Record<string, string>> {
  try {
    return parseOsRelease(await readFile('/etc/os-release', 'utf8'));
  } catch {
    return {};
  }
}

function memory(): Record<string, number> {
  const total = os.totalmem();
  // libuv reads MemAvailable on Linux: what gopsutil calls `available` (and Consul's `free` is
  // MemFree, which Node does not expose separately).
  const available = os.freemem();
  const used = total - available;
  return { total, available, used, usedPercent: percent(used, total) };
}

function cpus(): Record<string, unknown>[] {
  return os.cpus().map((c, i) => ({
    cpu: i,
    coreId: String(i),
    cores: 1,
    modelName: c.model,
    mhz: c.speed,
  }));
}

async function host(nowMs: number): Promise<Record<string, unknown>> {
  const release = await osRelease();
  const uptime = Math.floor(os.uptime());
  return {
    hostname: os.hostname(),
    uptime,
    bootTime: Math.floor(nowMs / 1000) - uptime,
    os: process.platform,
    platform: release.ID ?? '',
    platformFamily: (release.ID_LIKE ?? release.ID ?? '').split(' ')[0] ?? '',
    platformVersion: release.VERSION_ID ?? '',
    kernelVersion: os.release(),
    kernelArch: os.machine(),
  };
}

async function disk(): Promise<Record<string, unknown>> {
  const s = await statfs(DISK_PATH);
  const total = s.blocks * s.bsize;
  // As gopsutil: free is what an unprivileged user may still write, used what is taken.
  const free = s.bavail * s.bsize;
  const used = (s.blocks - s.bfree) * s.bsize;
  const inodesUsed = s.files - s.ffree;
  return {
    path: DISK_PATH,
    total,
    free,
    used,
    usedPercent: percent(used, used + free),
    inodesTotal: s.files,
    inodesUsed,
    inodesFree: s.ffree,
    inodesUsedPercent: percent(inodesUsed, s.files),
  };
}

/**
 * Collects the host's information at `nowMs`. A part that cannot be read is `null`, and its error
 * is listed in `Errors` (as a string: Go writes its errors as `{}`); `Errors` is `null` when all
 * were read, as in Consul. `CollectionTime` is in nanoseconds since the epoch (millisecond
 * precision).
 */
export async function consulHostInfo(nowMs: number): Promise<Record<string, unknown>> {
  const errors: string[] = [];
  const attempt = async <T>(part: string, read: () => T | Promise<T>): Promise<T | null> => {
    try {
      return await read();
    } catch (err) {
      errors.push(`${part}: ${(err as Error).message}`);
      return null;
    }
  };
  return {
    Memory: await attempt('memory', memory),
    CPU: await attempt('cpu', cpus),
    Host: await attempt('host', () => host(nowMs)),
    Disk: await attempt('disk', disk),
    // Nanoseconds past 2^53 lose their last digits as a double; milliseconds * 1e6 print exactly.
    CollectionTime: nowMs * 1e6,
    Errors: errors.length === 0 ? null : errors,
  };
}
