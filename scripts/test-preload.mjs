// Loaded into every test file's process by scripts/test.mjs (node --test passes its --import on).
//
// Coverage (c8 sets NODE_V8_COVERAGE) is collected from the test files' own processes only: the
// agents, sidecars and gateways the end-to-end tests spawn run with it off. V8's block coverage
// made those processes ~40% slower (test/e2e/agent-tls.test.ts: 19 s without, 27 s with), and
// the coverage thresholds (.c8rc.json) are met by the in-process tests. The process itself keeps
// collecting: node read the variable when it started. MESHWORK_TEST_CHILD_COVERAGE=1 keeps it on
// for spawned processes too.
if (process.env.NODE_TEST_CONTEXT !== undefined && process.env.MESHWORK_TEST_CHILD_COVERAGE !== '1')
  delete process.env.NODE_V8_COVERAGE;

// MESHWORK_TEST_CPU_LOG=<file>: each test file's process appends, at exit, the CPU seconds it
// used and those of the children it reaped (the agents, sidecars and tools it spawned), its wall
// seconds and its file, to find what a suite's time goes to:
//   MESHWORK_TEST_CPU_LOG=/tmp/cpu.txt npm run test:only -- test
//   sort -k1,1nr -k2,2nr /tmp/cpu.txt | head     # self, children, wall, file
// On a 2-core CI the suite is CPU-bound (vmstat: idle ~0% over a whole run), so CPU, not wall
// time, is what a change to a test saves.
const cpuLog = process.env.MESHWORK_TEST_CPU_LOG;
if (process.env.NODE_TEST_CONTEXT !== undefined && cpuLog !== undefined && cpuLog !== '') {
  const { appendFileSync, readFileSync } = await import('node:fs');
  const started = Date.now();
  process.on('exit', () => {
    const { user, system } = process.cpuUsage();
    const self = (user + system) / 1e6;
    // Node has no API for the reaped children's CPU: /proc/self/stat's cutime and cstime (fields
    // 16-17, counted after the command name's closing paren, which may hold spaces), in clock
    // ticks of 1/100 s (USER_HZ, fixed on Linux).
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const children = (Number(f[13]) + Number(f[14])) / 100;
    const wall = (Date.now() - started) / 1000;
    appendFileSync(
      cpuLog,
      `${self.toFixed(2)} ${children.toFixed(2)} ${wall.toFixed(1)} ${process.argv[1] ?? '?'}\n`,
    );
  });
}
