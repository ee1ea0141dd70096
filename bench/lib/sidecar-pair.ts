/**
 * @module Two sidecar data paths in this process, as an in-process benchmark needs them: B's
 * inbound in front of an app (service `payments`), A (service `orders`) routing to B by a
 * compiled snapshot, each with the observers it is given.
 */
import { silentLogger } from '../../src/core/logger.js';
import type { RequestObserver } from '../../src/proxy/observe.js';
import { startSidecarProxy, type RunningSidecarProxy } from '../../src/sidecar/sidecar-proxy.js';
import { fakeInstance } from '../../src/testing/fake-mesh-catalog.js';
import { compileSidecarSnapshot } from '../../test/helpers/mesh-snapshot.js';
import { SIDECAR_PROXY_BASE } from '../../test/helpers/sidecar.js';

export interface InProcessPair {
  /** `orders`: its outbound (`outboundUrl`) routes `Host: payments` to B. */
  readonly a: RunningSidecarProxy;
  /** `payments`: its inbound forwards to the app. */
  readonly b: RunningSidecarProxy;
  close(): Promise<void>;
}

/** Starts B (in front of the app on `appPort`), then A, and gives A the snapshot to reach B. */
export async function startInProcessPair(
  appPort: number,
  observers: {
    readonly outbound?: readonly RequestObserver[];
    readonly inbound?: readonly RequestObserver[];
  } = {},
): Promise<InProcessPair> {
  const b = await startSidecarProxy(
    { ...SIDECAR_PROXY_BASE, service: 'payments', appPort },
    silentLogger,
    observers.inbound === undefined ? {} : { inboundObservers: observers.inbound },
  );
  const a = await startSidecarProxy(
    SIDECAR_PROXY_BASE,
    silentLogger,
    observers.outbound === undefined ? {} : { outboundObservers: observers.outbound },
  );
  const instance = fakeInstance('p1', 'payments', {
    address: '127.0.0.1',
    port: Number(new URL(b.inboundUrl).port),
    meta: { 'sidecar-version': '0.1.0' },
  });
  a.applySnapshot(compileSidecarSnapshot('orders', [instance], []));
  return {
    a,
    b,
    close: async () => {
      await Promise.all([a.close(), b.close()]);
    },
  };
}
