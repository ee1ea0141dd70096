/**
 * `meshwork ca roots` and `meshwork ca rotate` with the real binary against a spawned agent, and
 * the leaves it signs checked by the real openssl: the CSR made by `openssl req`, the leaf read
 * by `openssl x509 -text` and verified by `openssl verify -CAfile` against the bundle the CLI
 * printed, before and after a rotation (issue 20).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { CaRootsResponse, LeafSignResponse } from '../../src/protocol/mesh/ca.js';
import { http } from '../helpers/agent.js';
import { runCli, useAgentProcess } from '../helpers/cli.js';

const openssl = (args: readonly string[]): string =>
  execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('meshwork ca (real agent, real openssl)', () => {
  const cli = useAgentProcess(['--dev', '--trust-domain', 'example.org', '--ca-leaf-ttl', '2h']);
  const path = (name: string): string => join(cli.dir, name);

  /** A key and CSR made by openssl, signed by the agent for `service`; the leaf's path. */
  const leafFor = async (service: string, name: string): Promise<string> => {
    openssl([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      path(`${name}.key`),
      '-out',
      path(`${name}.csr`),
      '-subj',
      '/CN=someone-else',
      '-addext',
      'subjectAltName=DNS:evil.example,URI:spiffe://example.org/ns/default/sa/payments',
    ]);
    const r = await http<LeafSignResponse>(cli.agent.url, 'POST', '/api/v1/mesh/ca/leaf', {
      csr: readFileSync(path(`${name}.csr`), 'utf8'),
      service,
    });
    assert.equal(r.status, 200, r.text);
    writeFileSync(path(`${name}.pem`), r.body.certPem);
    return path(`${name}.pem`);
  };

  it('prints the bundle; openssl verifies a leaf against it and reads its SPIFFE ID', async () => {
    const roots = await runCli(['ca', 'roots'], cli.env);
    assert.equal(roots.code, 0, roots.stderr);
    assert.match(roots.stdout, /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
    writeFileSync(path('bundle.pem'), roots.stdout);
    const json = await runCli(['ca', 'roots', '--json'], cli.env);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as CaRootsResponse;
    assert.equal(parsed.trustDomain, 'example.org');
    assert.equal(parsed.bundlePem, roots.stdout);

    const rootText = openssl(['x509', '-in', path('bundle.pem'), '-noout', '-text']);
    assert.match(rootText, /CA:TRUE/);
    assert.match(rootText, /Certificate Sign/);
    assert.match(rootText, /ASN1 OID: prime256v1/);

    const leaf = await leafFor('orders', 'orders');
    assert.equal(openssl(['verify', '-CAfile', path('bundle.pem'), leaf]).trim(), `${leaf}: OK`);
    const text = openssl(['x509', '-in', leaf, '-noout', '-text']);
    assert.match(text, /Subject: CN ?= ?orders\n/);
    assert.match(
      text,
      /X509v3 Subject Alternative Name: ?\n\s+URI:spiffe:\/\/example\.org\/ns\/default\/sa\/orders\n/,
    );
    assert.doesNotMatch(text, /evil\.example|sa\/payments|someone-else/);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /Digital Signature, Key Encipherment/);
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
    // --ca-leaf-ttl 2h: from a minute before signing to two hours after it.
    const dates = openssl(['x509', '-in', leaf, '-noout', '-startdate', '-enddate']);
    const start = Date.parse(/notBefore=(.+)/.exec(dates)?.[1] ?? '');
    const end = Date.parse(/notAfter=(.+)/.exec(dates)?.[1] ?? '');
    assert.ok(Math.abs(end - start - 2 * 3_600_000 - 60_000) <= 2_000, dates);
    // The leaf's key is the one openssl made (the private key never left this side).
    const leafKey = openssl(['x509', '-in', leaf, '-noout', '-pubkey']);
    const ownKey = openssl(['pkey', '-in', path('orders.key'), '-pubout']);
    assert.equal(leafKey, ownKey);
  });

  it('rotates: both roots in the bundle, old and new leaves verify, new leaves from the new root', async () => {
    const before = JSON.parse(
      (await runCli(['ca', 'roots', '--json'], cli.env)).stdout,
    ) as CaRootsResponse;
    const oldLeaf = await leafFor('orders', 'old');

    const rotated = await runCli(['ca', 'rotate', '--overlap', '1h'], cli.env);
    assert.equal(rotated.code, 0, rotated.stderr);
    const lines = rotated.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^ID\s+ACTIVE\s+NOT-AFTER\s+RETIRES-AT$/);
    assert.equal(lines.length, 3, rotated.stdout);
    assert.match(lines[1] ?? '', /\strue\s.*\s-$/);
    assert.match(lines[2] ?? '', new RegExp(`^${before.activeRootId.slice(0, 16)}\\s+false\\s`));

    const after = JSON.parse(
      (await runCli(['ca', 'roots', '--json'], cli.env)).stdout,
    ) as CaRootsResponse;
    assert.equal(after.roots.length, 2);
    assert.notEqual(after.activeRootId, before.activeRootId);
    writeFileSync(path('bundle2.pem'), (await runCli(['ca', 'roots'], cli.env)).stdout);
    const newLeaf = await leafFor('orders', 'new');
    for (const leaf of [oldLeaf, newLeaf]) {
      assert.equal(openssl(['verify', '-CAfile', path('bundle2.pem'), leaf]).trim(), `${leaf}: OK`);
    }
    // The old bundle alone does not vouch for the new root's leaves.
    assert.throws(() => openssl(['verify', '-CAfile', path('bundle.pem'), newLeaf]));
  });

  it('exits 2 on bad flags and subcommands', async () => {
    for (const args of [
      ['ca'],
      ['ca', 'nope'],
      ['ca', 'rotate', '--overlap', 'soon'],
      ['ca', 'roots', '--bogus'],
      ['agent', '--dev', '--ca-leaf-ttl', 'forever'],
      ['agent', '--dev', '--trust-domain', 'Not A Domain'],
      ['agent', '--dev', '--ca-leaf-ttl', '1s'],
    ]) {
      const r = await runCli(args, cli.env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
  });
});
