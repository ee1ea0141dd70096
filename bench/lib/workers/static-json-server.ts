/**
 * @module Worker for bench:reads: a plain node:http server answering every GET with the same bytes
 * from memory (the agent's answer, fetched once by the parent). IPC: {type:'serve', body,
 * headers} -> {type:'listening', port}.
 */
import { createServer } from 'node:http';

interface ServeMessage {
  type: 'serve';
  body: string;
  headers: Record<string, string>;
}

process.on('message', (m: ServeMessage) => {
  if (m.type !== 'serve') return;
  const body = Buffer.from(m.body, 'utf8');
  const headers = { ...m.headers, 'content-length': String(body.length) };
  const server = createServer((req, res) => {
    // Drain any request body, then answer with the stored bytes.
    req.resume();
    res.writeHead(200, headers);
    res.end(body);
  });
  // Same keep-alive window as fastify's default, so idle connections behave alike.
  server.keepAliveTimeout = 72_000;
  server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    process.send?.({ type: 'listening', port: typeof addr === 'object' && addr ? addr.port : 0 });
  });
});

process.on('disconnect', () => process.exit(0));
