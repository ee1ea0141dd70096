/** @module Asks every other agent of the cluster for the proxies it serves, and merges. */
import { request, type Dispatcher } from 'undici';
import type { AgentMember } from '../../protocol/api-types.js';
import type { ProxyStatus, ProxyStatusList } from '../../protocol/mesh/snapshot.js';

export interface FanoutOptions {
  /** This agent's node name (its own proxies are `local`, not asked for over HTTP). */
  readonly nodeName: string;
  readonly members: () => Promise<readonly AgentMember[]>;
  /** How long one member may take to answer; past it, it is listed as unreachable. */
  readonly timeoutMs: number;
  /** The connection pool the requests to peers go through. */
  readonly dispatcher: Dispatcher;
}

async function askMember(
  member: AgentMember,
  timeoutMs: number,
  dispatcher: Dispatcher,
): Promise<ProxyStatus[]> {
  const signal = AbortSignal.timeout(timeoutMs);
  const res = await request(`${member.url.replace(/\/+$/, '')}/api/v1/mesh/proxies?local=true`, {
    dispatcher,
    signal,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  const body = JSON.parse(text) as { proxies?: unknown };
  if (!Array.isArray(body.proxies)) throw new Error('the answer holds no proxies list');
  return body.proxies as ProxyStatus[];
}

/**
 * The proxies of every agent: `local` (this one's) and those the other members answer with,
 * sorted by id (then agent). A member that does not answer in time is listed in `unreachable`,
 * not fatal: proxy-status is what an operator reads when something is already wrong.
 */
export async function fanOut(
  local: readonly ProxyStatus[],
  options: FanoutOptions,
): Promise<ProxyStatusList> {
  const others = (await options.members()).filter((m) => m.nodeName !== options.nodeName);
  const answers = await Promise.allSettled(
    others.map((m) => askMember(m, options.timeoutMs, options.dispatcher)),
  );
  const proxies = [...local];
  const unreachable: { agent: string; url: string; error: string }[] = [];
  answers.forEach((a, i) => {
    const member = others[i] as AgentMember;
    if (a.status === 'fulfilled') proxies.push(...a.value);
    else
      unreachable.push({
        agent: member.nodeName,
        url: member.url,
        error: (a.reason as Error).message,
      });
  });
  proxies.sort((a, b) =>
    a.id < b.id ? -1 : a.id > b.id ? 1 : a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0,
  );
  return { proxies, unreachable };
}
