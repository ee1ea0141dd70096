/**
 * @module What `meshwork sidecar` loads at start (issue 19: one sidecar's RSS at most 60 MB at
 * 1,000 rps): none of the agent's parts (store, registry, API server, DNS, control plane) and
 * only the packages a sidecar runs. Walks the static value imports from the command's module
 * (type-only imports are erased; `import()` and createRequire loads happen on use, so the walk
 * stops there), reading the sources with the TypeScript parser.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SRC, staticGraph } from '../../../helpers/static-graph.js';

describe('meshwork sidecar: what it loads at start', () => {
  const { files, packages } = staticGraph('cli/commands/sidecar.ts');

  it('reaches no part of the agent, the control plane or the gateway', () => {
    const agentSide = [...files].filter((f) =>
      /^(agent|registry|registry-api|dns|control-plane|gateway|ui|testing)\//.test(f),
    );
    assert.deepEqual(agentSide, []);
    assert.deepEqual([...files].filter((f) => f.startsWith('cli/')).sort(), [
      'cli/command.ts',
      'cli/commands/sidecar.ts',
    ]);
  });

  it("loads only the packages a sidecar runs (undici's parts; yaml, re2js, x509 on use)", () => {
    // undici: Agent and request from their own files (client/undici.ts), not its index (fetch,
    // WebSocket, cache, mocks); yaml with the first config file; re2js with the first regex;
    // @peculiar's ASN.1 schemas (the CSR, issue 20) never: a child process encodes each CSR
    // (the next test holds that).
    assert.deepEqual([...packages].sort(), ['pino', 'prom-client', 'zod']);
  });

  it('reaches the CSR module only by import(), on first use, and its ASN.1 only in a child', () => {
    assert.ok(files.has('proxy/mesh-identity/mesh-identity.ts'));
    assert.ok(
      !files.has('proxy/mesh-identity/csr.ts'),
      'proxy/mesh-identity/csr.ts is imported statically',
    );
    const identity = readFileSync(join(SRC, 'proxy/mesh-identity/mesh-identity.ts'), 'utf8');
    assert.match(identity, /import\('\.\/csr\.js'\)/);
    // The proxy's CSR maker encodes in a child process (createKeyAndCsr's default,
    // encodeInChildProcess), whose module is the only one that loads the ASN.1 schemas; csr.ts
    // itself reaches no package.
    assert.match(identity, /\.then\(\(m\) => m\.createKeyAndCsr\)/);
    const csrSource = readFileSync(join(SRC, 'proxy/mesh-identity/csr.ts'), 'utf8');
    assert.match(csrSource, /encode: CsrEncoder = encodeInChildProcess/);
    const csr = staticGraph('proxy/mesh-identity/csr.ts');
    assert.deepEqual([...csr.packages], []);
    assert.deepEqual([...csr.files], ['proxy/mesh-identity/csr.ts']);
    const child = staticGraph('proxy/mesh-identity/csr-process.ts');
    assert.deepEqual([...child.packages].sort(), [
      '@peculiar/asn1-csr',
      '@peculiar/asn1-schema',
      '@peculiar/asn1-x509',
    ]);
  });
});
