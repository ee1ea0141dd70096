// The local ESLint plugin `meshwork`: the dependency rules of docs/architecture.md
// (meshwork/layers) and no import cycles in src/ (meshwork/no-cycle).
import { layersRule } from './layers.js';
import { noCycleRule } from './no-cycle.js';

export default {
  meta: { name: 'meshwork' },
  rules: { layers: layersRule, 'no-cycle': noCycleRule },
};
