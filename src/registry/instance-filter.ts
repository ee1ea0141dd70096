/** @module filterInstances: the status, tag, meta and zone filters of an instance list. */
import type { InstanceDto } from '../protocol/api-types.js';
import type { InstanceFilter } from './catalog-facade.js';

/** Applies status, tag, meta and zone filters. */
export function filterInstances(
  all: readonly InstanceDto[],
  filter: InstanceFilter,
): InstanceDto[] {
  const { status, tags, meta, zone } = filter;
  if (status === undefined && tags === undefined && meta === undefined && zone === undefined)
    return [...all];
  return all.filter(
    (i) =>
      (status === undefined || status.includes(i.status)) &&
      (tags === undefined || tags.every((t) => i.tags.includes(t))) &&
      (zone === undefined || i.meta.zone === zone) &&
      (meta === undefined || Object.entries(meta).every(([k, v]) => i.meta[k] === v)),
  );
}
