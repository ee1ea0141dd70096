// Local ESLint rule `meshwork/no-cycle`: no import cycle inside src/. The import graph of src/ is
// read from disk once and kept per file (re-read when a file's mtime or size changes); the file
// being linted contributes the imports of the text ESLint has, so an editor's unsaved buffer
// counts. A file in a strongly connected component of more than one module (or importing
// itself) is in a cycle; each of its imports into that component is reported with one way back.
// Type-only imports, re-exports and import() count: they are dependencies of the module all the
// same, and a cycle through types is one `import type` away from a cycle at runtime.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import ts from 'typescript';
import { ROOT, importTarget, moduleReferences, srcRelative } from './project.js';

/**
 * Cycles allowed until the work that removes them lands: each is the exact set of files of one
 * strongly connected component. One that no longer matches is reported, so it gets removed.
 */
export const CYCLE_EXCEPTIONS = [];

/** srcRoot -> { files: Map(file relative to src/ -> { mtimeMs, size, targets }), checkedAt } */
const graphs = new Map();
// Listing and stat-ing src/ costs ~10 ms; once per linted file that was half of `eslint src`.
// A long-running ESLint (an editor) sees other files' edits within this delay.
const RECHECK_MS = 2000;

/** The import graph of the .ts files under srcRoot, from disk, refreshed where files changed. */
function diskGraph(srcRoot) {
  let graph = graphs.get(srcRoot);
  if (graph === undefined)
    graphs.set(srcRoot, (graph = { files: new Map(), checkedAt: -Infinity }));
  const known = graph.files;
  if (performance.now() - graph.checkedAt < RECHECK_MS) return known;
  const seen = new Set();
  for (const entry of readdirSync(srcRoot, { recursive: true })) {
    const rel = String(entry).split(/[\\/]/).join('/');
    if (!rel.endsWith('.ts') || rel.endsWith('.d.ts')) continue;
    const path = join(srcRoot, rel);
    const { mtimeMs, size } = statSync(path);
    seen.add(rel);
    const cached = known.get(rel);
    if (cached?.mtimeMs === mtimeMs && cached.size === size) continue;
    const { importedFiles } = ts.preProcessFile(readFileSync(path, 'utf8'), true, true);
    const targets = importedFiles
      .map((f) => importTarget(srcRoot, rel, f.fileName))
      .filter((t) => t !== undefined);
    known.set(rel, { mtimeMs, size, targets });
  }
  for (const rel of known.keys()) if (!seen.has(rel)) known.delete(rel);
  graph.checkedAt = performance.now();
  return known;
}

/** The strongly connected component of `start` in `edges` (Tarjan; recursion depth <= files). */
function componentOf(start, edges) {
  let next = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  let found;
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), index.get(w)));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.includes(start)) found = component;
    }
  };
  visit(start);
  return found;
}

/** The shortest way from `from` back to `to` through `inside` (breadth first), as a path. */
function wayBack(from, to, inside, edges) {
  const previous = new Map([[from, undefined]]);
  const queue = [from];
  while (queue.length > 0) {
    const v = queue.shift();
    if (v === to && v !== from) break;
    for (const w of edges(v)) {
      if (!inside.has(w) || previous.has(w)) continue;
      previous.set(w, v);
      queue.push(w);
    }
  }
  if (from === to) return [from];
  const path = [to];
  for (let v = previous.get(to); v !== undefined; v = previous.get(v)) path.unshift(v);
  return path;
}

const sameSet = (a, b) => a.length === b.length && a.every((x) => b.includes(x));

export const noCycleRule = {
  meta: {
    type: 'problem',
    docs: { description: 'refuse import cycles inside src/' },
    schema: [
      {
        type: 'object',
        properties: {
          // Tests only: a fixture tree instead of this repository.
          root: { type: 'string' },
          exceptions: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                files: { type: 'array', items: { type: 'string' }, minItems: 2 },
                why: { type: 'string' },
              },
              required: ['files', 'why'],
              additionalProperties: false,
            },
          },
        },
        additionalProperties: false,
      },
    ],
    messages: {
      cycle: 'import cycle: {{path}} (docs/architecture.md, Dependency rules)',
      staleException:
        'cycle exception [{{files}}] ({{why}}) matches no cycle any more: remove it from scripts/eslint/no-cycle.js',
    },
  },
  create(context) {
    const options = context.options[0] ?? {};
    const srcRoot = join(options.root ?? ROOT, 'src');
    const self = srcRelative(srcRoot, context.filename);
    if (self === undefined || !self.endsWith('.ts')) return {};
    const exceptions = (options.exceptions ?? CYCLE_EXCEPTIONS).filter((e) =>
      e.files.includes(self),
    );
    const refs = [];
    const visitors = moduleReferences((ref) => {
      const target = importTarget(srcRoot, self, ref.specifier);
      if (target !== undefined) refs.push({ node: ref.node, target });
    });
    return {
      ...visitors,
      'Program:exit': (program) => {
        const disk = diskGraph(srcRoot);
        const own = [...new Set(refs.map((r) => r.target))];
        const edges = (v) => (v === self ? own : (disk.get(v)?.targets ?? []));
        const component = componentOf(self, edges);
        const inCycle = component.length > 1 || own.includes(self);
        const excepted = exceptions.find((e) => inCycle && sameSet(e.files, component));
        for (const e of exceptions) {
          if (e !== excepted) {
            const data = { files: e.files.join(', '), why: e.why };
            context.report({ node: program, messageId: 'staleException', data });
          }
        }
        if (!inCycle || excepted !== undefined) return;
        const inside = new Set(component);
        for (const ref of refs) {
          if (!inside.has(ref.target)) continue;
          const path = [self, ...wayBack(ref.target, self, inside, edges)];
          context.report({ node: ref.node, messageId: 'cycle', data: { path: path.join(' -> ') } });
        }
      },
    };
  },
};
