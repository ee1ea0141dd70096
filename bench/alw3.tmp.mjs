import pino from 'pino';
import { open, write } from 'node:fs';
const entry = { start_time: new Date().toISOString(), method: 'GET', path: '/users/12345', protocol: 'HTTP/1.1', response_code: 200, response_flags: '-', bytes_received: 0, bytes_sent: 13, duration: 1, upstream_service_time: 1, x_forwarded_for: null, user_agent: 'wrk', request_id: 'c0ffee-1234-5678', authority: 'bench-app', upstream_host: '127.0.0.1:12345', upstream_cluster: 'outbound|80|v1|bench-app.default', trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', reporter: 'source', source_workload: 'client', destination_service: 'bench-app', connection_security_policy: 'none', downstream_remote_address: '127.0.0.1:5555' };
const n = 200000;
async function run(name, w, end) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) { w(); if (i % 1000 === 0) await new Promise((r) => setImmediate(r)); }
  await end();
  const c1 = process.cpuUsage(c0);
  console.log(name, ((c1.user + c1.system) / n).toFixed(2), 'µs/line');
}
let sink = 0;
for (let k = 0; k < 2; k++) {
await run('stringify only', () => { sink += JSON.stringify(entry).length; }, async () => {});
for (const [minLength, maxWrite] of [[4096, 16384], [32768, 65536], [65536, 262144]]) {
  const d = pino.destination({ dest: '/tmp/alw.log', sync: false, minLength, maxWrite, periodicFlush: 1000 });
  await run(`sonic minLength ${minLength}`, () => d.write(`${JSON.stringify(entry)}\n`), () => new Promise((r) => { d.once('close', r); d.end(); }));
}
const fd = await new Promise((r) => open('/tmp/alw.log', 'a', (e, fd) => r(fd)));
let parts = []; let len = 0; let inflight = 0;
const flush = () => { const b = Buffer.from(parts.join('')); parts = []; len = 0; inflight++; write(fd, b, () => inflight--); };
await run('hand batch 64k', () => { const s = `${JSON.stringify(entry)}\n`; parts.push(s); len += s.length; if (len >= 65536) flush(); }, async () => { flush(); while (inflight > 0) await new Promise((r) => setTimeout(r, 5)); });
}
