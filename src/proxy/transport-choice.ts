/**
 * @module chooseTransports: which HTTP/1.1 server and client a proxy (gateway, sidecar) runs on:
 * its own (Http1Server, Http1Agent) as configured, or, where this runtime's parser failed the
 * self-test, node:http and undici, with a warning and a metric (Envoy's rule: a degraded mode is
 * a warn log plus a stat), never silently.
 */
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../core/logger.js';
import type { NativeHttp1Support } from './http1/native-support.js';

/** The server and client a proxy's config asks for (the gateway's options of these names). */
export interface TransportOptions {
  readonly upstreamClient: 'native' | 'undici';
  readonly downstreamServer: 'native' | 'node';
}

/**
 * Decides the server and client once, at start: a native side asked for and refused by
 * `support` (NATIVE_HTTP1_SUPPORT, or a stand-in in tests) falls back, logs one warning with the
 * reason, and sets `meshwork_<component>_http1_fallback{side}` to 1 (0 otherwise; a side
 * configured as undici or node is a choice, not a fallback). Registers that gauge on `registry`:
 * call once per registry.
 */
export function chooseTransports(
  asked: TransportOptions,
  support: NativeHttp1Support,
  component: string,
  registry: Registry,
  log: Logger,
): TransportOptions {
  const gauge = new Gauge({
    name: `meshwork_${component}_http1_fallback`,
    help: "1 while this side runs on its fallback (undici upstream, node:http downstream) because node's parser failed the self-test",
    labelNames: ['side'],
    registers: [registry],
  });
  let upstreamClient = asked.upstreamClient;
  let downstreamServer = asked.downstreamServer;
  if (upstreamClient === 'native' && support.agent !== undefined) {
    upstreamClient = 'undici';
    log.warn({ side: 'upstream', using: 'undici', reason: support.agent }, 'http1 fallback');
  }
  if (downstreamServer === 'native' && support.server !== undefined) {
    downstreamServer = 'node';
    log.warn({ side: 'downstream', using: 'node:http', reason: support.server }, 'http1 fallback');
  }
  gauge.set({ side: 'upstream' }, upstreamClient === asked.upstreamClient ? 0 : 1);
  gauge.set({ side: 'downstream' }, downstreamServer === asked.downstreamServer ? 0 : 1);
  return { upstreamClient, downstreamServer };
}
