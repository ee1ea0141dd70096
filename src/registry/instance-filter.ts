/** @module filterInstances: the status, tag, meta and zone filters of an instance list. */
import type { InstanceStatus } from '../core/types.js';
import type { InstanceDto } from '../protocol/api-types.js';

/** Filters of an instance list. */
export interface InstanceFilter {
  readonly status?: readonly InstanceStatus[];
  readonly tags?: readonly string[];
  readonly meta?: Readonly<Record<string, string>>;
  readonly zone?: string;
}

export interface ServiceInstances {
  readonly index: number;
  readonly instances: readonly InstanceDto[];
}

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
