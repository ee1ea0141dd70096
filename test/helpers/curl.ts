/** @module Test helpers: the real curl as an HTTP client, its answer split into status, headers, body. */
import { execFile } from 'node:child_process';

export interface CurlAnswer {
  readonly status: number;
  /** Header names lower-cased; the last value of a repeated header. */
  readonly headers: Readonly<Record<string, string>>;
  readonly text: string;
}

/**
 * Runs `curl -sS -i <args...> <url>` (rejects when curl fails: no answer at all) and parses the
 * answer's head; `args` go before the URL (`['-H', 'Accept: ...']`).
 */
export function curl(url: string, args: readonly string[] = []): Promise<CurlAnswer> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['-sS', '-i', '--max-time', '20', ...args, url],
      { maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err !== null) {
          reject(new Error(`curl ${url}: ${err.message}\n${stderr}`));
          return;
        }
        const end = stdout.indexOf('\r\n\r\n');
        const head = (end < 0 ? stdout : stdout.slice(0, end)).split('\r\n');
        const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(head[0] ?? '')?.[1] ?? 0);
        const headers: Record<string, string> = {};
        for (const line of head.slice(1)) {
          const at = line.indexOf(':');
          if (at > 0) headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
        }
        resolve({ status, headers, text: end < 0 ? '' : stdout.slice(end + 4) });
      },
    );
  });
}
