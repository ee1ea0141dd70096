/**
 * @module The static module graph of a file of src/: the value imports and re-exports it reaches
 * (type-only imports are erased; `import()` and createRequire loads happen on use, so the walk
 * stops there), read with the TypeScript parser. For the footprint tests of the commands.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** src/, absolute. */
export const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** The value imports and re-exports of one file: relative paths resolved, packages by name. */
function valueImports(file: string): string[] {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022);
  const out: string[] = [];
  for (const st of sf.statements) {
    if (ts.isImportDeclaration(st)) {
      const clause = st.importClause;
      if (clause?.isTypeOnly === true) continue;
      const named = clause?.namedBindings;
      const allTypes =
        clause !== undefined &&
        clause.name === undefined &&
        named !== undefined &&
        ts.isNamedImports(named) &&
        named.elements.length > 0 &&
        named.elements.every((e) => e.isTypeOnly);
      if (!allTypes) out.push((st.moduleSpecifier as ts.StringLiteral).text);
    } else if (ts.isExportDeclaration(st) && st.moduleSpecifier !== undefined && !st.isTypeOnly) {
      out.push((st.moduleSpecifier as ts.StringLiteral).text);
    }
  }
  return out;
}

/** Files of src/ (relative) and packages the module graph from `entry` reaches statically. */
export function staticGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = [join(SRC, entry)];
  for (let file = todo.pop(); file !== undefined; file = todo.pop()) {
    const rel = relative(SRC, file);
    if (files.has(rel)) continue;
    files.add(rel);
    for (const spec of valueImports(file)) {
      if (spec.startsWith('.')) todo.push(join(dirname(file), spec.replace(/\.js$/, '.ts')));
      else if (!spec.startsWith('node:'))
        packages.add(
          spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!,
        );
    }
  }
  return { files, packages };
}
