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
