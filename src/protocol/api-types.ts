/** @module Response shapes of the native API (/api/v1) and its watch stream, shared with the SDK. */
import type { CheckDefinition, CheckStatus, Instance, InstanceStatus } from '../core/types.js';

/** A check as readers see it: its definition plus its current status. */
export interface CheckDto extends CheckDefinition {
  readonly status: CheckStatus;
  readonly output: string;
  /** Epoch ms of the last status change. */
  readonly since: number;
}

/** An instance as readers see it: as stored, plus its status and its checks' states. */
export interface InstanceDto extends Omit<Instance, 'checks'> {
  readonly status: InstanceStatus;
  readonly statusReason: string;
  readonly checks: readonly CheckDto[];
  readonly createIndex: number;
  readonly modifyIndex: number;
}

export interface InstanceResponse {
  readonly index: number;
  readonly instance: InstanceDto;
}

export interface InstanceListResponse {
  readonly index: number;
  readonly service: string;
  readonly instances: readonly InstanceDto[];
}

export interface ServiceSummaryDto {
  readonly name: string;
  readonly instances: number;
  readonly byStatus: Readonly<Record<InstanceStatus, number>>;
  readonly tags: readonly string[];
  readonly modifyIndex: number;
}

export interface ServiceListResponse {
  readonly index: number;
  readonly services: readonly ServiceSummaryDto[];
}

export interface DeleteResponse {
  readonly index: number;
  readonly deleted: boolean;
  /** With `?notify=true`: the watchers of the service that were sent the deletion. */
  readonly notified?: { readonly streams: number; readonly blockingQueries: number };
}

export interface ApplyResponse {
  readonly index: number;
  readonly set: string;
  readonly created: readonly string[];
  readonly updated: readonly string[];
  readonly unchanged: readonly string[];
  readonly deleted: readonly string[];
}

export interface HeartbeatResponse {
  readonly index: number;
  readonly status: InstanceStatus;
}

/** The error body of every non-2xx answer. */
export interface ErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly field?: string;
    /** Every problem, when a request was refused for several (a mesh apply's documents). */
    readonly details?: { readonly problems: readonly unknown[] };
  };
}

/**
 * Server-sent events of `GET /api/v1/watch`: first a `snapshot`, then `upsert`/`delete`
 * deltas, each with the index it reflects. A `reset` tells a watcher it was dropped (too slow)
 * and must reconnect to resynchronise from a fresh snapshot.
 */
export type WatchEvent =
  | {
      readonly type: 'snapshot';
      readonly index: number;
      readonly instances: readonly InstanceDto[];
    }
  | { readonly type: 'upsert'; readonly index: number; readonly instance: InstanceDto }
  | {
      readonly type: 'delete';
      readonly index: number;
      readonly id: string;
      readonly service: string;
    }
  | { readonly type: 'reset'; readonly index: number; readonly reason: string };

/** Index header on every read of the native API. */
export const INDEX_HEADER = 'x-meshwork-index';

/** One agent of the cluster (`GET /api/v1/agents`). */
export interface AgentMember {
  readonly nodeName: string;
  /** Its HTTP API base URL. */
  readonly url: string;
  /** Epoch ms when it joined. */
  readonly joinedAt: number;
  /** Alive while its lease is renewed (cluster mode); agents that are gone are not listed. */
  readonly status: 'alive';
}

export interface AgentListResponse {
  readonly index: number;
  readonly agents: readonly AgentMember[];
}
