import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  parsePem,
  readTlsFiles,
  registryConnectOptions,
  type RegistryTlsOptions,
  type TlsFileNames,
} from '../../../src/client/tls-files.js';
import { ERROR_CODES, isMeshError } from '../../../src/core/errors.js';
import { makeTestPki, type TestPki } from '../../helpers/tls-certs.js';

/** Labels as RFC 7468 allows them: printable, single hyphens or spaces inside. */
const labelArb = fc
  .array(fc.stringMatching(/^[A-Z0-9]{1,8}$/), { minLength: 1, maxLength: 3 })
  .chain((words) =>
    fc
      .array(fc.constantFrom(' ', '-'), {
        minLength: words.length - 1,
        maxLength: words.length - 1,
      })
      .map((seps) => words.map((w, i) => (i === 0 ? w : `${seps[i - 1] ?? ' '}${w}`)).join('')),
  );
/** Text between blocks: anything without five hyphens in a row. */
const textArb = fc.string({ maxLength: 40 }).filter((s) => !s.includes('-----'));

function pem(label: string, der: Uint8Array, width: number): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(new RegExp(`.{1,${width}}`, 'g')) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

describe('parsePem', () => {
  it('answers every block with its label and bytes, whatever text lies between them', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            label: labelArb,
            der: fc.uint8Array({ maxLength: 200 }),
            width: fc.integer({ min: 4, max: 76 }),
            before: textArb,
          }),
          { maxLength: 5 },
        ),
        textArb,
        (blocks, tail) => {
          const text = blocks.map((b) => b.before + pem(b.label, b.der, b.width)).join('') + tail;
          const parsed = parsePem(text);
          assert.deepEqual(
            parsed.map((b) => ({ label: b.label, der: [...b.der] })),
            blocks.map((b) => ({ label: b.label, der: [...b.der] })),
          );
        },
      ),
    );
  });

  it('refuses a block whose END label differs from its BEGIN, naming it', () => {
    fc.assert(
      fc.property(labelArb, labelArb, fc.uint8Array({ maxLength: 50 }), (a, b, der) => {
        fc.pre(a !== b);
        const text = pem(a, der, 64).replace(`-----END ${a}-----`, `-----END ${b}-----`);
        assert.throws(() => parsePem(text), { message: `a PEM block "${a}" ends with "${b}"` });
      }),
    );
  });

  it('refuses a body that is not base64 (a legacy Proc-Type header, stray symbols)', () => {
    fc.assert(
      fc.property(
        labelArb,
        fc.constantFrom('Proc-Type: 4,ENCRYPTED', 'ab*cd', 'abc', '%%%%'),
        (label, body) => {
          const text = `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
          assert.throws(() => parsePem(text), {
            message: `the PEM block "${label}" is not base64`,
          });
        },
      ),
    );
  });

  it('answers no block for text without one, and never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        try {
          parsePem(s);
        } catch (err) {
          assert.match((err as Error).message, /PEM block/);
        }
      }),
    );
    assert.deepEqual(parsePem('no pem here'), []);
  });
});

describe('readTlsFiles', () => {
  let pki: TestPki;
  const names: TlsFileNames = {
    caFile: '--tls-ca-file',
    certFile: '--tls-cert-file',
    keyFile: '--tls-key-file',
  };
  before(() => {
    pki = makeTestPki();
  });
  after(() => pki.remove());

  it('answers the PEM text of good files and no problem', () => {
    const { material, problems } = readTlsFiles(
      { caFile: pki.caFile, certFile: pki.server.certFile, keyFile: pki.server.keyFile },
      names,
    );
    assert.deepEqual(problems, []);
    assert.equal(material.ca, readFileSync(pki.caFile, 'utf8'));
    assert.equal(material.cert, readFileSync(pki.server.certFile, 'utf8'));
    assert.equal(material.key, readFileSync(pki.server.keyFile, 'utf8'));
  });

  it('names the option and the reason for a missing file, a non-PEM file and a wrong key', () => {
    const notPem = join(pki.dir, 'not-pem.txt');
    writeFileSync(notPem, 'hello\n');
    assert.deepEqual(readTlsFiles({ caFile: join(pki.dir, 'absent.pem') }, names).problems, [
      `--tls-ca-file: cannot read ${join(pki.dir, 'absent.pem')}: ENOENT`,
    ]);
    assert.deepEqual(
      readTlsFiles({ caFile: notPem, certFile: notPem, keyFile: notPem }, names).problems,
      [
        `--tls-ca-file: ${notPem}: not a PEM certificate (no "BEGIN CERTIFICATE" block)`,
        `--tls-cert-file: ${notPem}: not a PEM certificate (no "BEGIN CERTIFICATE" block)`,
        `--tls-key-file: ${notPem}: not a PEM private key (no "BEGIN ... PRIVATE KEY" block)`,
      ],
    );
    assert.deepEqual(
      readTlsFiles({ certFile: pki.server.certFile, keyFile: pki.client.keyFile }, names).problems,
      [
        `--tls-key-file: ${pki.client.keyFile}: the key does not match the certificate of --tls-cert-file`,
      ],
    );
    // A key given where the certificate belongs, and a certificate where the key belongs.
    assert.deepEqual(
      readTlsFiles({ certFile: pki.server.keyFile, keyFile: pki.server.certFile }, names).problems,
      [
        `--tls-cert-file: ${pki.server.keyFile}: not a PEM certificate (no "BEGIN CERTIFICATE" block)`,
        `--tls-key-file: ${pki.server.certFile}: not a PEM private key (no "BEGIN ... PRIVATE KEY" block)`,
      ],
    );
  });

  it('wants a certificate and a key together', () => {
    assert.deepEqual(readTlsFiles({ certFile: pki.server.certFile }, names).problems, [
      '--tls-key-file: required with --tls-cert-file',
    ]);
    assert.deepEqual(readTlsFiles({ keyFile: pki.server.keyFile }, names).problems, [
      '--tls-cert-file: required with --tls-key-file',
    ]);
  });

  it('refuses a certificate block whose bytes are not X.509', () => {
    const bogus = join(pki.dir, 'bogus.pem');
    writeFileSync(bogus, pem('CERTIFICATE', new Uint8Array([1, 2, 3, 4]), 64));
    assert.deepEqual(readTlsFiles({ caFile: bogus }, names).problems, [
      `--tls-ca-file: ${bogus}: certificate 1 of the file is not a valid X.509 certificate`,
    ]);
  });
});

describe('registryConnectOptions', () => {
  let pki: TestPki;
  before(() => {
    pki = makeTestPki();
  });
  after(() => pki.remove());

  /** The problems `registryConnectOptions(tls)` throws with (fails if it answers). */
  const problemsOf = (tls: RegistryTlsOptions): string[] => {
    try {
      registryConnectOptions(tls);
    } catch (err) {
      assert.ok(isMeshError(err, ERROR_CODES.CONFIG_INVALID));
      return err.details?.problems as string[];
    }
    return assert.fail('should throw');
  };

  it('answers nothing without tls, the files read, or the PEM text given', () => {
    assert.equal(registryConnectOptions(undefined), undefined);
    const ca = readFileSync(pki.caFile, 'utf8');
    assert.deepEqual(registryConnectOptions({ caFile: pki.caFile }), { ca });
    const cert = readFileSync(pki.client.certFile, 'utf8');
    const key = readFileSync(pki.client.keyFile, 'utf8');
    assert.deepEqual(registryConnectOptions({ ca: [ca], cert, key }), { ca: [ca], cert, key });
    assert.deepEqual(
      registryConnectOptions({
        caFile: pki.caFile,
        certFile: pki.client.certFile,
        keyFile: pki.client.keyFile,
      }),
      { ca, cert, key },
    );
  });

  it('refuses text and file for the same thing, a certificate without its key, bad files', () => {
    const ca = readFileSync(pki.caFile, 'utf8');
    assert.deepEqual(problemsOf({ ca, caFile: pki.caFile }), [
      'tls.ca: give ca or caFile, not both',
    ]);
    assert.deepEqual(problemsOf({ cert: 'x' }), [
      'tls.cert: a client certificate and its key go together (cert and key)',
    ]);
    assert.deepEqual(problemsOf({ caFile: join(pki.dir, 'nope.pem') }), [
      `tls.caFile: cannot read ${join(pki.dir, 'nope.pem')}: ENOENT`,
    ]);
  });
});
