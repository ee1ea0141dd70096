#!/usr/bin/env node
// Shim: the CLI lives in dist/cli/main.js (built by `npm run build`; `npm ci` runs it via prepare).
import('../dist/cli/main.js').then(
  (m) => m.main(process.argv.slice(2)).then((code) => process.exit(code)),
  (err) => {
    process.stderr.write(`meshwork: cannot load dist/ (run "npm run build"): ${err.message}\n`);
    process.exit(1);
  },
);
