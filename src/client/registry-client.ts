/**
 * @module RegistryClient: a thin HTTP client for the agent's native API (/api/v1), with failover
 * across several agent addresses. The CLI's operator commands use only this.
 */
import type { Dispatcher } from 'undici';
import { Agent, request } from './undici.js';
import { registryConnectOptions, type RegistryTlsOptions } from './tls-files.js';
import { errors, MeshError } from '../core/errors.js';
import type {
  AgentListResponse,
  ApplyResponse,
  DeleteResponse,
  ErrorBody,
  HeartbeatResponse,
  InstanceListResponse,
  InstanceResponse,
  ServiceListResponse,
  WatchEvent,
} from '../protocol/api-types.js';
import type { ProxyStatusList } from '../protocol/mesh/snapshot.js';
import {
  MESH_EDGES_PATH,
  MESH_GRAPH_PATH,
  type MeshGraph,
  type ProxyEdgeReport,
} from '../protocol/mesh/graph.js';
import {
  CA_LEAF_PATH,
  CA_ROOTS_PATH,
  CA_ROTATE_PATH,
  type CaRootsResponse,
  type LeafSignRequest,
  type LeafSignResponse,
  type RotateRequest,
} from '../protocol/mesh/ca.js';
import type {
  MeshApplyBody,
  MeshApplyResponse,
  MeshDeleteResponse,
  MeshResourceListResponse,
  MeshResourceResponse,
} from '../protocol/mesh/api.js';
import type { RegistrationInput } from '../protocol/registration.js';
import type { CheckStatus, InstanceStatus } from '../core/types.js';
import type { ConsulAclPolicy, ConsulAclToken } from '../protocol/acl.js';

export interface RegistryClientOptions {
  /** Agent base URLs, tried in order (e.g. http://127.0.0.1:8500). */
  readonly addresses: readonly string[];
  /** Per-request timeout (blocking queries add their wait). */
  readonly timeoutMs?: number;
  /**
   * TLS for `https://` addresses: the CA to trust (the agent's certificate's) and a client
   * certificate for an agent that requires one. Files are read here, once; a bad one throws
   * CONFIG_INVALID naming it.
   */
  readonly tls?: RegistryTlsOptions | undefined;
  /** ACL token sent with every request (`X-Consul-Token`); none by default. */
  readonly token?: string;
}

export const DEFAULT_REGISTRY_CLIENT_OPTIONS = Object.freeze({ timeoutMs: 10_000 });

export interface InstanceQuery {
  readonly status?: readonly InstanceStatus[];
  readonly tags?: readonly string[];
  readonly meta?: Readonly<Record<string, string>>;
  readonly zone?: string;
  /** Blocking query: return when the index passes this. */
  readonly index?: number;
  readonly waitMs?: number;
}

/** Client of the native API. */
export class RegistryClient {
  readonly #addresses: readonly string[];
  readonly #timeoutMs: number;
  /** Short requests: a small pool per agent. */
  readonly #dispatcher: Dispatcher;
  /**
   * Watch streams and blocking queries, which hold their connection for minutes: a pool with no
   * cap, a connection each, so that however many are open they starve neither each other nor
   * the short requests. (One capped pool for both left the 17th watch, and every register and
   * heartbeat after it, waiting forever.)
   */
  readonly #long: Dispatcher;
  #preferred = 0;
  /** Whether a client certificate was given (for the hint when an agent closes without one). */
  readonly #clientCert: boolean;
  readonly #token: string | undefined;

  constructor(options: RegistryClientOptions) {
    if (options.addresses.length === 0)
      throw errors.validation('addresses', 'give at least one agent address');
    this.#addresses = options.addresses.map((a) => a.replace(/\/+$/, ''));
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_REGISTRY_CLIENT_OPTIONS.timeoutMs;
    const connect = registryConnectOptions(options.tls);
    this.#clientCert = connect?.cert !== undefined;
    const tls = connect === undefined ? {} : { connect };
    this.#dispatcher = new Agent({ keepAliveTimeout: 10_000, connections: 16, ...tls });
    this.#long = new Agent({ keepAliveTimeout: 10_000, ...tls });
    this.#token = options.token === '' ? undefined : options.token;
  }

  register(input: RegistrationInput): Promise<InstanceResponse> {
    return this.#json('PUT', '/api/v1/instances', input);
  }

  /**
   * Removes an instance. With `notify`, the agent answers once the service's watchers have been
   * sent the deletion, with how many (`notified`).
   */
  deregister(id: string, options: { notify?: boolean } = {}): Promise<DeleteResponse> {
    const qs = options.notify === true ? '?notify=true' : '';
    return this.#json('DELETE', `/api/v1/instances/${encodeURIComponent(id)}${qs}`);
  }

  heartbeat(
    id: string,
    status: CheckStatus = 'passing',
    output?: string,
  ): Promise<HeartbeatResponse> {
    return this.#json('PUT', `/api/v1/instances/${encodeURIComponent(id)}/heartbeat`, {
      status,
      ...(output === undefined ? {} : { output }),
    });
  }

  maintenance(id: string, enabled: boolean, reason?: string): Promise<InstanceResponse> {
    return this.#json('PUT', `/api/v1/instances/${encodeURIComponent(id)}/maintenance`, {
      enabled,
      ...(reason === undefined ? {} : { reason }),
    });
  }

  getInstance(id: string): Promise<InstanceResponse> {
    return this.#json('GET', `/api/v1/instances/${encodeURIComponent(id)}`);
  }

  /** The agents of the cluster (one, outside cluster mode). */
  members(): Promise<AgentListResponse> {
    return this.#json('GET', '/api/v1/agents');
  }

  /**
   * The proxies connected for mesh push: to this agent with `local`, else to every agent of the
   * cluster (the ones that did not answer are listed in `unreachable`).
   */
  meshProxies(options: { local?: boolean } = {}): Promise<ProxyStatusList> {
    return this.#json('GET', `/api/v1/mesh/proxies${options.local === true ? '?local=true' : ''}`);
  }

  /** Sends a proxy's edge counts for the call graph (answered 204). */
  async meshReportEdges(report: ProxyEdgeReport): Promise<void> {
    const res = await this.#send('POST', MESH_EDGES_PATH, report, {});
    await res.body.dump();
  }

  /** The mesh call graph over the last `windowSeconds` (default 60). */
  meshGraph(options: { windowSeconds?: number } = {}): Promise<MeshGraph> {
    const w = options.windowSeconds;
    return this.#json('GET', `${MESH_GRAPH_PATH}${w === undefined ? '' : `?window=${w}`}`);
  }

  /** The mesh CA's trust bundle. */
  caRoots(): Promise<CaRootsResponse> {
    return this.#json('GET', CA_ROOTS_PATH);
  }

  /**
   * A leaf certificate for the key of `request.csr`, for `request.service` (the token must
   * allow writing that service).
   */
  caSignLeaf(request: LeafSignRequest): Promise<LeafSignResponse> {
    return this.#json('POST', CA_LEAF_PATH, request);
  }

  /** Rotates the mesh CA's root; the old root stays in the bundle for `overlap` (e.g. `1h`). */
  caRotate(request: RotateRequest = {}): Promise<CaRootsResponse> {
    return this.#json('POST', CA_ROTATE_PATH, request);
  }

  services(): Promise<ServiceListResponse> {
    return this.#json('GET', '/api/v1/services');
  }

  instances(service: string, query: InstanceQuery = {}): Promise<InstanceListResponse> {
    const p = new URLSearchParams();
    if (query.status !== undefined && query.status.length > 0)
      p.set('status', query.status.join(','));
    for (const t of query.tags ?? []) p.append('tag', t);
    for (const [k, v] of Object.entries(query.meta ?? {})) p.set(`meta.${k}`, v);
    if (query.zone !== undefined) p.set('zone', query.zone);
    if (query.index !== undefined) p.set('index', String(query.index));
    if (query.waitMs !== undefined) p.set('wait', `${query.waitMs}ms`);
    const qs = p.toString();
    return this.#json(
      'GET',
      `/api/v1/services/${encodeURIComponent(service)}/instances${qs ? `?${qs}` : ''}`,
      undefined,
      query.waitMs,
    );
  }

  apply(
    set: string,
    instances: readonly RegistrationInput[],
    source?: string,
  ): Promise<ApplyResponse> {
    return this.#json('PUT', '/api/v1/apply', {
      set,
      instances,
      ...(source === undefined ? {} : { source }),
    });
  }

  /**
   * Applies mesh resources and at most one instance set in one commit, all or nothing
   * (`POST /api/v1/mesh/apply`). A refusal is a validation MeshError whose
   * `details.problems` lists every problem with its document.
   * @example
   * await client.meshApply({ documents: [virtualService, { services: [...] }], set: 'shop' });
   */
  meshApply(body: MeshApplyBody): Promise<MeshApplyResponse> {
    return this.#json('POST', '/api/v1/mesh/apply', body);
  }

  /**
   * Mesh resources, sorted by key: all, or of one kind (a plural like `virtualservices`, a kind
   * or a short name), optionally of one namespace; `index`/`waitMs` make it a blocking query.
   */
  meshResources(
    query: { kind?: string; namespace?: string; index?: number; waitMs?: number } = {},
  ): Promise<MeshResourceListResponse> {
    const p = new URLSearchParams();
    if (query.namespace !== undefined) p.set('namespace', query.namespace);
    if (query.index !== undefined) p.set('index', String(query.index));
    if (query.waitMs !== undefined) p.set('wait', `${query.waitMs}ms`);
    const qs = p.toString();
    const kind = query.kind === undefined ? '' : `/${encodeURIComponent(query.kind)}`;
    return this.#json(
      'GET',
      `/api/v1/mesh/resources${kind}${qs ? `?${qs}` : ''}`,
      undefined,
      query.waitMs,
    );
  }

  /** One mesh resource; rejects with MESHWORK_ERR_REGISTRY_MESH_RESOURCE_NOT_FOUND if absent. */
  meshResource(kind: string, namespace: string, name: string): Promise<MeshResourceResponse> {
    return this.#json('GET', meshResourcePath(kind, namespace, name));
  }

  /** Deletes one mesh resource (`deleted: false` when there was none). */
  meshDelete(kind: string, namespace: string, name: string): Promise<MeshDeleteResponse> {
    return this.#json('DELETE', meshResourcePath(kind, namespace, name));
  }

  /**
   * Streams watch events for a service (or the whole catalog) until `signal` aborts or the agent
   * closes the stream. Resolves when the stream ends.
   */
  async watch(
    service: string | undefined,
    onEvent: (event: WatchEvent) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    const path = `/api/v1/watch${service === undefined ? '' : `?service=${encodeURIComponent(service)}`}`;
    const res = await this.#send('GET', path, undefined, { signal, stream: true });
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += (chunk as Buffer).toString('utf8');
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const data = frame
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          if (data !== '') onEvent(JSON.parse(data) as WatchEvent);
        }
      }
    } catch (err) {
      if (signal?.aborted === true) return;
      throw errors.clientRequestFailed(`watch stream failed: ${(err as Error).message}`, true, err);
    }
  }

  /** Makes the first management token (once; then 403 "ACL bootstrap no longer allowed"). */
  async aclBootstrap(): Promise<ConsulAclToken> {
    return this.#json('PUT', '/v1/acl/bootstrap');
  }

  /** Creates a policy from Consul rules (HCL or JSON). Needs `acl write`. */
  async aclCreatePolicy(policy: {
    name: string;
    rules: string;
    description?: string;
  }): Promise<ConsulAclPolicy> {
    return this.#json('PUT', '/v1/acl/policy', {
      Name: policy.name,
      Rules: policy.rules,
      Description: policy.description ?? '',
    });
  }

  /** Creates a token linked to the policies named. Needs `acl write`. */
  async aclCreateToken(token: {
    policies: readonly string[];
    description?: string;
  }): Promise<ConsulAclToken> {
    return this.#json('PUT', '/v1/acl/token', {
      Description: token.description ?? '',
      Policies: token.policies.map((Name) => ({ Name })),
    });
  }

  async close(): Promise<void> {
    await Promise.all([this.#dispatcher.close(), this.#long.close()]);
  }

  async #json<T>(method: string, path: string, body?: unknown, extraTimeoutMs = 0): Promise<T> {
    const res = await this.#send(method, path, body, { extraTimeoutMs });
    return (await res.body.json()) as T;
  }

  async #send(
    method: string,
    path: string,
    body: unknown,
    opts: { signal?: AbortSignal | undefined; stream?: boolean; extraTimeoutMs?: number },
  ): Promise<Dispatcher.ResponseData> {
    let lastError: unknown;
    for (let i = 0; i < this.#addresses.length; i++) {
      const n = (this.#preferred + i) % this.#addresses.length;
      const base = this.#addresses[n] as string;
      const timeout = opts.stream === true ? 0 : this.#timeoutMs + (opts.extraTimeoutMs ?? 0) * 1.1;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(base + path, {
          method: method as Dispatcher.HttpMethod,
          // A stream or a blocking query (one that may wait) holds its connection.
          dispatcher:
            opts.stream === true || (opts.extraTimeoutMs ?? 0) > 0 ? this.#long : this.#dispatcher,
          headersTimeout: timeout,
          bodyTimeout: timeout,
          ...(opts.signal === undefined ? {} : { signal: opts.signal }),
          headers: {
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            ...(this.#token === undefined ? {} : { 'x-consul-token': this.#token }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      } catch (err) {
        if (opts.signal?.aborted === true) throw err;
        lastError = err;
        continue; // connection-level failure: try the next agent
      }
      this.#preferred = n;
      if (res.statusCode >= 200 && res.statusCode < 300) return res;
      const text = await res.body.text();
      let parsed: ErrorBody | undefined;
      try {
        parsed = JSON.parse(text) as ErrorBody;
      } catch {
        parsed = undefined;
      }
      const message = parsed?.error?.message ?? `HTTP ${res.statusCode}: ${text.slice(0, 200)}`;
      const e = new MeshError(
        (parsed?.error?.code as MeshError['code'] | undefined) ??
          errors.clientRequestFailed('', false).code,
        message,
        {
          retryable: res.statusCode >= 500,
          details: {
            status: res.statusCode,
            ...(parsed?.error?.field === undefined ? {} : { field: parsed.error.field }),
            ...(parsed?.error?.details?.problems === undefined
              ? {}
              : { problems: parsed.error.details.problems }),
          },
        },
      );
      throw e;
    }
    const reason = (lastError as Error | undefined)?.message ?? 'unknown error';
    const hint = tlsHint(lastError, this.#addresses, this.#clientCert);
    throw errors.clientRequestFailed(
      `cannot reach the registry at ${this.#addresses.join(', ')}: ${reason}${hint}`,
      true,
      lastError,
    );
  }
}

/** Node's codes for a peer certificate that does not chain to a trusted CA. */
const UNTRUSTED_CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
]);

/**
 * What to do about a TLS failure, said after node's reason: the agent's certificate is not
 * trusted (give its CA), names another host, has expired, or the agent closed the connection
 * to a client without a certificate (an agent with `tls.verifyIncoming` does, under TLS 1.3,
 * after the handshake). Empty for anything else.
 */
function tlsHint(err: unknown, addresses: readonly string[], clientCert: boolean): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return '';
  if (UNTRUSTED_CERT_CODES.has(code))
    return " (TLS: the agent's certificate is not signed by a CA this client trusts: give the CA that signed it, e.g. --registry-ca or $MESHWORK_CACERT)";
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return " (TLS: the agent's certificate does not name the host of its URL)";
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID')
    return " (TLS: the agent's certificate is outside its validity period)";
  const closed = code === 'UND_ERR_SOCKET' || code === 'ECONNRESET';
  if (closed && !clientCert && addresses.some((a) => a.startsWith('https://')))
    return ' (TLS: an agent that requires client certificates closes connections without one: give one, e.g. --registry-cert and --registry-key)';
  return '';
}

const meshResourcePath = (kind: string, namespace: string, name: string): string =>
  `/api/v1/mesh/resources/${[kind, namespace, name].map(encodeURIComponent).join('/')}`;

export function createRegistryClient(options: RegistryClientOptions): RegistryClient {
  return new RegistryClient(options);
}
