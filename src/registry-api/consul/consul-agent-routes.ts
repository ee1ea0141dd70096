/** @module The Consul /v1/agent endpoints: self, members, services, checks, maintenance, local health. */
import type { InstanceDto } from '../../protocol/api-types.js';
import { SERVICE_SPEC, CHECK_SPEC, CHECK_UPDATE_SPEC } from './consul-body.js';
import type { ConsulCheckWrites } from './consul-checks.js';
import type { ConsulContext } from './consul-context.js';
import { ORIGIN_COORDINATE } from './consul-coordinate-routes.js';
import { NODE_MAINTENANCE_DEFAULT, SERVICE_MAINTENANCE_DEFAULT } from './consul-markers.js';
import { mayRead, requireAcl } from '../acl/request-acl.js';
import { refuse } from './consul-refuse.js';
import { checkInputOf, registrationFromConsul } from './consul-registration.js';
import { agentService, aggregatedStatus, nodeId, serviceChecks } from './consul-shapes.js';
import { first, parseEnable } from './consul-query.js';

/** The Consul API version whose shapes the adapter answers (agent/self Config.Version). */
export const CONSUL_API_VERSION = '1.17.0';

/** Adds the /v1/agent routes to the context's router. */
export function registerConsulAgentRoutes(ctx: ConsulContext, checks: ConsulCheckWrites): void {
  const { registry, node, policy, route, q, json, done, filterOf, decode, param } = ctx;
  const { agentNodeChecks, ownCheckIds, withLocalOutputs } = ctx;
  const { prepareCheck, deregisterCheck, ttlUpdate } = checks;
  const options = { version: ctx.version };

  /** The service checks of `i` as this agent holds them (their latest outputs: withLocalOutputs). */
  const localServiceChecks = (i: InstanceDto): Record<string, unknown>[] => {
    const checks = withLocalOutputs(i.checks, registry.unwrittenCheckStates(i.id));
    return serviceChecks(node, checks === undefined ? i : { ...i, checks });
  };

  const member = (): Record<string, unknown> => ({
    Name: node.nodeName,
    Addr: node.address,
    Port: 8301,
    Tags: {
      dc: node.datacenter,
      role: 'consul',
      port: '8300',
      build: `${CONSUL_API_VERSION}:meshwork-${options.version}`,
      vsn: '2',
      vsn_min: '2',
      vsn_max: '3',
      id: nodeId(node.nodeName),
    },
    Status: 1,
    ProtocolMin: 1,
    ProtocolMax: 5,
    ProtocolCur: 2,
    DelegateMin: 2,
    DelegateMax: 5,
    DelegateCur: 4,
  });

  route(['GET'], '/agent/self', async (req, reply) =>
    json(req, reply, {
      Config: {
        Datacenter: node.datacenter,
        PrimaryDatacenter: node.datacenter,
        NodeName: node.nodeName,
        NodeID: nodeId(node.nodeName),
        Revision: `meshwork-${options.version}`,
        Server: true,
        Version: CONSUL_API_VERSION,
        BuildDate: '',
      },
      DebugConfig: {},
      // The coordinate coordinate/nodes reports for this node.
      Coord: ORIGIN_COORDINATE,
      Member: member(),
      Stats: { meshwork: { version: options.version, store: registry.storeKind } },
      Meta: { 'consul-network-segment': '' },
    }),
  );

  route(['GET'], '/agent/members', async (req, reply) =>
    json(req, reply, mayRead(req, 'node', node.nodeName) ? [member()] : []),
  );

  route(['GET'], '/agent/services', async (req, reply) => {
    const keep = filterOf(req);
    const out: Record<string, unknown> = {};
    for (const i of registry.allInstances()) {
      if (!mayRead(req, 'service', i.service)) continue;
      const s = agentService(node, i);
      if (keep === undefined || keep(s)) out[i.id] = s;
    }
    return json(req, reply, out, registry.catalogIndex);
  });

  route(['GET'], '/agent/service/:id', async (req, reply) => {
    const id = param(req, 'id');
    const dto = registry.instance(id);
    if (dto === undefined) throw refuse(`unknown service ID: ${id}`, 404);
    return json(req, reply, agentService(node, dto), dto.modifyIndex);
  });

  route(['GET'], '/agent/checks', async (req, reply) => {
    const keep = filterOf(req);
    const out: Record<string, unknown> = {};
    const all = [
      ...(mayRead(req, 'node', node.nodeName)
        ? agentNodeChecks().filter((c) => c.CheckID !== 'serfHealth')
        : []),
      ...registry
        .allInstances()
        .filter((i) => mayRead(req, 'service', i.service))
        .flatMap(localServiceChecks),
    ];
    for (const c of all) if (keep === undefined || keep(c)) out[String(c.CheckID)] = c;
    return json(req, reply, out, registry.catalogIndex);
  });

  route(['PUT'], '/agent/service/register', async (req, reply) => {
    const body = decode(req, SERVICE_SPEC);
    const reg = ownCheckIds(registrationFromConsul(body, node, policy));
    const prev = registry.instanceDefinition(reg.id ?? '');
    // A service's token registers that service only (and replaces only its own instances).
    requireAcl(req, 'service', reg.service, 'write');
    if (prev !== undefined) requireAcl(req, 'service', prev.service, 'write');
    const ids = new Set((reg.checks ?? []).map((c) => c.id));
    // Consul keeps checks registered earlier unless told to replace them.
    const kept =
      prev === undefined || 'replace-existing-checks' in q(req) || prev.service !== reg.service
        ? []
        : prev.checks.filter((c) => !ids.has(c.id)).map((c) => checkInputOf(c, policy.floors));
    // Consul replaces a service whose ID moves to another name; the catalog refuses the move.
    if (prev !== undefined && prev.service !== reg.service) await registry.deregister(prev.id);
    await registry.register({ ...reg, checks: [...(reg.checks ?? []), ...kept] });
    return done(reply);
  });

  route(
    ['PUT'],
    '/agent/service/deregister/:id',
    async (req, reply) => {
      const id = param(req, 'id');
      const r = await registry.deregister(id);
      if (!r.deleted) throw unknownService(id);
      return done(reply);
    },
    true,
  );

  route(['PUT'], '/agent/service/maintenance/:id', async (req, reply) => {
    const id = param(req, 'id');
    const enable = parseEnable(q(req));
    if (registry.instanceDefinition(id) === undefined) throw unknownService(id);
    const reason = first(q(req).reason) ?? '';
    await registry.setMaintenance(id, enable, reason || SERVICE_MAINTENANCE_DEFAULT);
    return done(reply);
  });

  route(['PUT'], '/agent/maintenance', async (req, reply) => {
    const enable = parseEnable(q(req));
    const reason = first(q(req).reason) ?? '';
    await registry.setAgentMaintenance(enable, reason || NODE_MAINTENANCE_DEFAULT);
    return done(reply);
  });

  route(['PUT'], '/agent/check/register', async (req, reply) => {
    await prepareCheck(req, decode(req, CHECK_SPEC))();
    return done(reply);
  });

  route(
    ['PUT'],
    '/agent/check/deregister/:id',
    async (req, reply) => {
      await deregisterCheck(req, param(req, 'id'));
      return done(reply);
    },
    true,
  );

  for (const [verb, status] of [
    ['pass', 'passing'],
    ['warn', 'warning'],
    ['fail', 'critical'],
  ] as const) {
    route(
      ['PUT'],
      `/agent/check/${verb}/:id`,
      async (req, reply) => {
        await ttlUpdate(req, param(req, 'id'), status, first(q(req).note) ?? '');
        return done(reply);
      },
      true,
    );
  }

  route(['PUT'], '/agent/check/update/:id', async (req, reply) => {
    const body = decode(req, CHECK_UPDATE_SPEC);
    const status = body.Status as string | undefined;
    if (status !== 'passing' && status !== 'warning' && status !== 'critical')
      throw refuse(`Invalid check status: '${status ?? ''}'`);
    await ttlUpdate(req, param(req, 'id'), status, (body.Output as string | undefined) ?? '');
    return done(reply);
  });

  /** Consul's agent health answer: 200 passing, 429 warning, 503 critical or maintenance. */
  const healthAnswer = (i: InstanceDto): { status: number; aggregated: string; body: object } => {
    const checks = [...agentNodeChecks(), ...localServiceChecks(i)];
    const aggregated = aggregatedStatus(checks);
    const status = aggregated === 'passing' ? 200 : aggregated === 'warning' ? 429 : 503;
    return {
      status,
      aggregated,
      body: { AggregatedStatus: aggregated, Service: agentService(node, i), Checks: checks },
    };
  };

  route(['GET'], '/agent/health/service/id/:id', async (req, reply) => {
    const id = param(req, 'id');
    const dto = registry.instance(id);
    const text = first(q(req).format) === 'text';
    if (dto === undefined) {
      if (text)
        return reply
          .status(404)
          .header('content-type', 'text/plain')
          .send(`ServiceId ${id} not found`);
      throw refuse(`ServiceId ${id} not found`, 404);
    }
    const a = healthAnswer(dto);
    if (text) return reply.status(a.status).header('content-type', 'text/plain').send(a.aggregated);
    return json(req, reply, a.body, undefined, a.status);
  });

  route(['GET'], '/agent/health/service/name/:name', async (req, reply) => {
    const name = param(req, 'name');
    const answers = registry.serviceInstances(name).map(healthAnswer);
    const text = first(q(req).format) === 'text';
    if (answers.length === 0) {
      if (text)
        return reply
          .status(404)
          .header('content-type', 'text/plain')
          .send(`ServiceName ${name} Not Found`);
      throw refuse(`ServiceName ${name} Not Found`, 404);
    }
    // The worst instance decides the status, as in Consul.
    const status = Math.max(...answers.map((a) => (a.status === 200 ? 0 : a.status)));
    const worst = answers.find((a) => a.status === status) ?? answers[0];
    const code = status === 0 ? 200 : status;
    if (text)
      return reply
        .status(code)
        .header('content-type', 'text/plain')
        .send(worst?.aggregated ?? 'passing');
    return json(
      req,
      reply,
      answers.map((a) => a.body),
      undefined,
      code,
    );
  });

  // Membership is one node: these are accepted and change nothing.
  route(['PUT'], '/agent/join/:address', async (_req, reply) => done(reply), true);
  route(['PUT'], '/agent/force-leave/:node', async (_req, reply) => done(reply), true);
  route(['PUT'], '/agent/leave', async (_req, reply) => done(reply));
  route(['PUT'], '/agent/reload', async (_req, reply) => done(reply));
}

function unknownService(id: string) {
  return refuse(
    `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`,
    404,
  );
}
