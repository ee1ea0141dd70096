/**
 * @module The audit log: one JSON line per write to the agent's API (who, what, when, and how it
 * ended), to a file or the agent's log. Never the token's secret: its accessor id.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../core/logger.js';
import { requestAcl } from './acl/request-acl.js';

/** One audit line. */
export interface AuditRecord {
  /** ISO time the answer was sent. */
  readonly time: string;
  /** The token's accessor id; `anonymous` without a token, `unknown` for an unknown secret. */
  readonly accessorId: string;
  readonly sourceIp: string;
  readonly method: string;
  /** The path, without the query (a `?token=` never reaches the log). */
  readonly path: string;
  /** The resources the request's ACL checks named: `service:payments`, `key:app/x`, `mesh`. */
  readonly what: readonly string[];
  /** The HTTP status answered. */
  readonly status: number;
}

/** Where audit lines go. MUST NOT throw; called once per write, after its answer. */
export interface AuditSink {
  write(record: AuditRecord): void;
  close(): Promise<void>;
}

/** Audit lines appended to `file` (created 0600 when absent). */
export function fileAuditSink(file: string, log: Logger): AuditSink {
  const stream: WriteStream = createWriteStream(file, { flags: 'a', mode: 0o600 });
  stream.on('error', (err) => log.error({ err, file }, 'audit log write failed'));
  return {
    write: (record) => {
      stream.write(`${JSON.stringify(record)}\n`);
    },
    close: () => new Promise((resolve) => stream.end(resolve)),
  };
}

/** Audit lines as info entries of the agent's log (`component: audit`). */
export function loggerAuditSink(log: Logger): AuditSink {
  const audit = log.child({ component: 'audit' });
  return {
    write: (record) => audit.info({ ...record }, 'audit'),
    close: () => Promise.resolve(),
  };
}

const WRITE_METHODS = new Set(['PUT', 'POST', 'DELETE', 'PATCH']);

/**
 * Audits every write: a PUT, POST or DELETE, or a request whose ACL checks asked for write (the
 * legacy GETs of python-consul), refused ones included.
 */
export function installAuditLog(app: FastifyInstance, sink: AuditSink): void {
  app.addHook('onResponse', (req, reply, done) => {
    const acl = requestAcl(req);
    if (WRITE_METHODS.has(req.method) || acl.wrote) {
      const url = req.url;
      const q = url.indexOf('?');
      sink.write({
        time: new Date().toISOString(),
        accessorId: acl.auth.accessorId,
        sourceIp: req.socket.remoteAddress ?? '',
        method: req.method,
        path: q < 0 ? url : url.slice(0, q),
        what: acl.what,
        status: reply.statusCode,
      });
    }
    done();
  });
}
