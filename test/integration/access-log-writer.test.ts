// The access log writer (issue 21) against destinations that misbehave: a pipe nobody reads
// (the buffer stays bounded: lines past it are dropped and counted) and a pipe whose reader went
// away (EPIPE: counted, never thrown). Linux FIFOs made with mkfifo.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createAccessLogWriter } from '../../src/telemetry/access-log-writer.js';
import { until } from '../helpers/until.js';

describe('access log writer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-access-writer-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const fifo = (name: string): { path: string; reader: number } => {
    const path = join(dir, name);
    execFileSync('mkfifo', [path]);
    // A reader that never reads: the writer's open does not wait, and the pipe fills (64 KiB).
    const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    return { path, reader };
  };

  it('drops and counts lines once the destination is maxBufferBytes behind', async () => {
    const { path, reader } = fifo('stuck');
    const w = createAccessLogWriter(path, 256 * 1024);
    const line = { path: '/'.padEnd(200, 'x') };
    for (let i = 0; i < 20_000; i++) w.write(line);
    // 20,000 lines of ~213 bytes: ~4 MB against 64 KiB of pipe and 256 KiB of buffer.
    await until(() => w.dropped > 10_000, 10_000, 'lines dropped');
    assert.ok(w.dropped < 20_000, `${w.dropped} dropped: some were kept`);
    // Read the pipe out while the writer writes its buffer and closes (a write left blocked on
    // a full pipe would hold a thread-pool thread, and the process, forever).
    let closed = false;
    void w.close(10_000).then(() => (closed = true));
    const chunk = Buffer.alloc(65_536);
    await until(
      () => {
        try {
          while (readSync(reader, chunk) > 0);
        } catch {
          // EAGAIN: read out for now
        }
        return closed;
      },
      15_000,
      'the writer closed',
    );
    closeSync(reader);
  });

  it('survives its reader going away (EPIPE) and counts what it could not write', async () => {
    const { path, reader } = fifo('gone');
    const w = createAccessLogWriter(path, 1024 * 1024);
    // Past 64 KiB a batch goes at once: read it, so the writer is known to be open and writing.
    const big = { pad: 'x'.repeat(5000) };
    const chunk = Buffer.alloc(65_536);
    await until(
      () => {
        w.write(big);
        try {
          return readSync(reader, chunk) > 0;
        } catch {
          return false; // EAGAIN: nothing yet
        }
      },
      10_000,
      'the first lines through the pipe',
    );
    closeSync(reader);
    let i = 0;
    await until(
      () => {
        w.write({ i: i++ });
        return w.dropped > 0;
      },
      10_000,
      'EPIPE counted as dropped lines',
    );
    await w.close(500);
  });

  it('writes every line to a file by close()', async () => {
    const path = join(dir, 'a', 'b.log');
    const w = createAccessLogWriter(path);
    for (let i = 0; i < 1000; i++) w.write({ i });
    await w.close();
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    assert.equal(lines.length, 1000);
    assert.deepEqual(JSON.parse(lines[999] as string), { i: 999 });
    assert.equal(w.dropped, 0);
  });

  it('writes lines of any size and script intact and in order, across batches', async () => {
    const path = join(dir, 'sizes.log');
    const w = createAccessLogWriter(path);
    // Short and long lines, multi-byte ones (3 bytes a character), lines longer than a batch.
    const sizes = [1, 700, 30_000, 5, 9_000, 100_000, 64 * 1024, 3];
    const entries = sizes.flatMap((n, i) => [
      { i, path: 'x'.repeat(n) },
      { i, agent: 'é€'.repeat(n >> 1) },
    ]);
    for (const e of entries) w.write(e);
    await w.close();
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    assert.deepEqual(
      lines.map((l) => JSON.parse(l) as unknown),
      entries,
    );
    assert.equal(w.dropped, 0);
  });
});
