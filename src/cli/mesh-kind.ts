/** @module The `<kind>` argument of `meshwork get` and `meshwork delete`. */
import { errors } from '../core/errors.js';
import {
  MESH_KIND_INFO,
  MESH_KINDS,
  meshKindOf,
  type MeshKind,
} from '../protocol/mesh/resource.js';

/** Kind names for help texts: one plural a line with its short name. */
export const KIND_HELP = MESH_KINDS.map(
  (k) => `  ${MESH_KIND_INFO[k].plural.padEnd(24)}${MESH_KIND_INFO[k].short}`,
).join('\n');

/** The kind `word` names (plural, kind or short name), or a usage error listing the plurals. */
export function kindArgument(word: string | undefined): MeshKind {
  const kind = word === undefined ? undefined : meshKindOf(word);
  if (kind === undefined) {
    const plurals = MESH_KINDS.map((k) => MESH_KIND_INFO[k].plural).join(', ');
    throw errors.cliUsage(
      word === undefined
        ? `give a kind: ${plurals}`
        : `no kind of mesh resource is called "${word}": the kinds are ${plurals}`,
    );
  }
  return kind;
}
