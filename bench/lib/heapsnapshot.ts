/**
 * @module Summarises a V8 .heapsnapshot: self size by node type and constructor/name, to see what
 * the agent's heap holds per instance.
 * CLI: node --import tsx bench/lib/heapsnapshot.ts <file.heapsnapshot> [top] [divide-by]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { table } from './report.js';

interface Snapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface HeapRow {
  type: string;
  name: string;
  count: number;
  bytes: number;
}

/**
 * Rows of (type, name, count, self bytes), biggest first; plain objects are named by their
 * properties. `strings` groups string contents by their first 48 characters with digits folded
 * (`inst-N`), to tell which strings repeat per instance.
 */
export function summarizeHeap(file: string): HeapRow[] & { strings: HeapRow[] } {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length;
  const fType = fields.indexOf('type');
  const fName = fields.indexOf('name');
  const fSize = fields.indexOf('self_size');
  const fEdges = fields.indexOf('edge_count');
  const edgeFields = s.snapshot.meta.edge_fields;
  const edgeTypes = s.snapshot.meta.edge_types[0];
  const ew = edgeFields.length;
  const eType = edgeFields.indexOf('type');
  const eName = edgeFields.indexOf('name_or_index');
  let edge = 0;
  const strings = new Map<string, HeapRow>();
  const agg = new Map<string, HeapRow>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + fType] ?? 0] ?? '?';
    let name = s.strings[s.nodes[i + fName] ?? 0] ?? '?';
    // Strings, numbers and code are grouped by type, not by their (unique) contents.
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') {
      const family = name.replace(/\d+/g, 'N').slice(0, 48).replace(/\s+/g, ' ');
      const sk = `${type}\u0000${family}`;
      const f = strings.get(sk) ?? { type, name: family, count: 0, bytes: 0 };
      f.count++;
      f.bytes += s.nodes[i + fSize] ?? 0;
      strings.set(sk, f);
      name = '';
    }
    if (type === 'code' || type === 'number' || type === 'hidden') name = '';
    if (type === 'array' && name.length > 40) name = name.slice(0, 40);
    const edges = s.nodes[i + fEdges] ?? 0;
    if (type === 'object' && name === 'Object') {
      // Plain objects are told apart by their property names: {id,service,address,...}.
      const props: string[] = [];
      for (let k = 0; k < edges && props.length < 12; k++) {
        const base = edge + k * ew;
        if (edgeTypes[s.edges[base + eType] ?? 0] === 'property')
          props.push(s.strings[s.edges[base + eName] ?? 0] ?? '?');
      }
      name = `{${props.join(',')}}`;
    }
    edge += edges * ew;
    const key = `${type}\u0000${name}`;
    const e = agg.get(key) ?? { type, name, count: 0, bytes: 0 };
    e.count++;
    e.bytes += s.nodes[i + fSize] ?? 0;
    agg.set(key, e);
  }
  const rows = [...agg.values()].sort((a, b) => b.bytes - a.bytes);
  return Object.assign(rows, {
    strings: [...strings.values()].sort((a, b) => b.bytes - a.bytes),
  });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error('usage: node --import tsx bench/lib/heapsnapshot.ts <file> [top] [divide-by]');
    process.exit(2);
  }
  const top = Number(process.argv[3] ?? 30);
  const per = Number(process.argv[4] ?? 1);
  const rows = summarizeHeap(file);
  const total = rows.reduce((a, r) => a + r.bytes, 0);
  console.log(
    `total self size ${(total / 1024 / 1024).toFixed(1)} MiB; per unit ${(total / per).toFixed(0)} B`,
  );
  console.log(
    table(
      ['type', 'name', 'count', 'MiB', 'count / unit', 'B / unit'],
      rows
        .slice(0, top)
        .map((r) => [
          r.type,
          r.name,
          r.count,
          (r.bytes / 1024 / 1024).toFixed(2),
          (r.count / per).toFixed(2),
          (r.bytes / per).toFixed(0),
        ]),
    ),
  );
}
