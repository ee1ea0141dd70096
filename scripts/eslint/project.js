// Where the project is and what an import inside src/ points at, for the local ESLint rules.
// The root comes from this file's own location, never from ESLint's cwd: run from a subfolder
// (or with --stdin from anywhere), a rule that looked for `${cwd}/src` would find nothing and
// check nothing, silently.
import { realpathSync } from 'node:fs';
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the folder two levels above scripts/eslint/. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * `file` relative to `srcRoot`, with `/` separators, or undefined when it is not inside it. A
 * path through a symlink is compared by its real path (this module's URL is a real path).
 */
export function srcRelative(srcRoot, file) {
  const inside = (p) => {
    const rel = relative(srcRoot, p);
    return rel === '' || rel.startsWith('..') || rel.startsWith(sep) || /^[a-zA-Z]:/.test(rel)
      ? undefined
      : rel.split(sep).join('/');
  };
  const direct = inside(file);
  if (direct !== undefined) return direct;
  try {
    return inside(realpathSync(file));
  } catch {
    return undefined; // not on disk (lintText of a made-up path outside src/)
  }
}

/**
 * What a relative or absolute import specifier in `fromRel` (a path relative to src/) points
 * at, relative to src/: `.js` is read as the `.ts` it is compiled from (ESM imports name the
 * output). Undefined for a package (bare specifier) or a path outside src/.
 */
export function importTarget(srcRoot, fromRel, specifier) {
  if (!specifier.startsWith('.') && !specifier.startsWith('/')) return undefined;
  const rel = srcRelative(srcRoot, resolve(srcRoot, dirname(fromRel), specifier));
  return rel?.replace(/\.js$/, '.ts');
}

/** The package a bare specifier names (`@scope/pkg/sub` -> `@scope/pkg`), or undefined. */
export function packageOf(specifier) {
  if (specifier.startsWith('.') || specifier.startsWith('/')) return undefined;
  if (specifier.startsWith('node:')) return specifier;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/**
 * Every module reference of a file's AST, with what the rules need: the specifier, the node to
 * report on, whether it is type-only (erased at runtime) and the names it takes ('*' for all).
 * Static imports, re-exports, import() with a literal and `import('x').T` types all count.
 */
export function moduleReferences(visit) {
  const names = (specifiers, pick) => specifiers.map(pick);
  return {
    ImportDeclaration: (node) =>
      visit({
        node,
        specifier: node.source.value,
        typeOnly: node.importKind === 'type',
        names: names(node.specifiers, (s) =>
          s.type === 'ImportSpecifier'
            ? (s.imported.name ?? s.imported.value)
            : s.type === 'ImportDefaultSpecifier'
              ? 'default'
              : '*',
        ),
      }),
    ExportNamedDeclaration: (node) =>
      node.source &&
      visit({
        node,
        specifier: node.source.value,
        typeOnly: node.exportKind === 'type',
        names: names(node.specifiers, (s) => s.local.name ?? s.local.value),
      }),
    ExportAllDeclaration: (node) =>
      visit({
        node,
        specifier: node.source.value,
        typeOnly: node.exportKind === 'type',
        names: ['*'],
      }),
    ImportExpression: (node) =>
      node.source.type === 'Literal' &&
      typeof node.source.value === 'string' &&
      visit({ node, specifier: node.source.value, typeOnly: false, names: ['*'] }),
    TSImportType: (node) => {
      const literal = node.argument?.literal ?? node.parameter?.literal;
      if (typeof literal?.value === 'string') {
        visit({ node, specifier: literal.value, typeOnly: true, names: ['*'] });
      }
    },
  };
}
