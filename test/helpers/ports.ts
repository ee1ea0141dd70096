/** @module Free loopback ports for processes that must be told their port (they cannot take port 0). */
import { createServer, type Server } from 'node:net';

/** `n` distinct free loopback ports: all are held open together, so none is handed out twice. */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    }
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/** A loopback port free at the time of asking (another process may take it before it is used). */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0] as number;
}
