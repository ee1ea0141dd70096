/** @module Test helpers: fast-check arbitraries of mesh apply bodies, from valid-looking to junk. */
import fc from 'fast-check';

/** A document that often looks like a mesh resource or an instance set, with junk anywhere. */
export const meshishDocument = fc.record(
  {
    apiVersion: fc.oneof(
      fc.constantFrom(
        'networking.istio.io/v1beta1',
        'security.istio.io/v1',
        'meshwork.dev/v1',
        'apps/v1',
      ),
      fc.anything(),
    ),
    kind: fc.oneof(
      fc.constantFrom(
        'VirtualService',
        'DestinationRule',
        'ServiceEntry',
        'Sidecar',
        'RetryBudget',
        'Gateway',
      ),
      fc.anything(),
    ),
    metadata: fc.oneof(
      fc.record(
        { name: fc.string(), namespace: fc.string(), labels: fc.anything() },
        { requiredKeys: [] },
      ),
      fc.anything(),
    ),
    spec: fc.anything(),
    services: fc.oneof(fc.array(fc.anything(), { maxLength: 3 }), fc.anything()),
    set: fc.anything(),
  },
  { requiredKeys: [] },
);

/** A body of `POST /api/v1/mesh/apply`: anything, or `{documents, set, dryRun}` of any values. */
export const meshApplyBody = fc.oneof(
  fc.anything(),
  fc.record(
    {
      documents: fc.oneof(
        fc.array(fc.oneof(meshishDocument, fc.anything()), { maxLength: 5 }),
        fc.anything(),
      ),
      set: fc.anything(),
      dryRun: fc.anything(),
    },
    { requiredKeys: [] },
  ),
);
