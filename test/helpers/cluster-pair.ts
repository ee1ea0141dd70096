/** @module Test helpers: one real etcd and two cluster-mode agents over it, for a suite. */
import { after, before } from 'node:test';
import type { RunningAgent } from '../../src/cli/agent-runtime.js';
import { startClusterAgent } from './agent.js';
import { startEtcd, type EtcdProcess } from './etcd.js';

export interface ClusterPair {
  readonly etcd: EtcdProcess;
  /** Node `agent-a`. */
  readonly a: RunningAgent;
  /** Node `agent-b`. */
  readonly b: RunningAgent;
}

/**
 * Starts etcd and agents `agent-a` then `agent-b` (key prefix `/<name>-<pid>/`) before the calling
 * suite's tests, and stops them after; the answer gives them (call it inside tests only).
 */
export function useClusterPair(name: string): () => ClusterPair {
  let pair: ClusterPair | undefined;
  before(async () => {
    const etcd = await startEtcd();
    const prefix = `/${name}-${process.pid}/`;
    const a = await startClusterAgent([etcd.endpoint], 'agent-a', prefix);
    const b = await startClusterAgent([etcd.endpoint], 'agent-b', prefix);
    pair = { etcd, a, b };
  });
  after(async () => {
    await pair?.a.close();
    await pair?.b.close();
    await pair?.etcd.stop();
  });
  return () => {
    if (pair === undefined) throw new Error('the cluster pair has not started');
    return pair;
  };
}
