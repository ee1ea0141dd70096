/** @module refuse: the errors of requests Consul refuses, answered as Consul's plain-text error. */
import { errors } from '../../core/errors.js';

/** A request Consul refuses with a plain-text message (400 unless `status` says otherwise). */
export const refuse = (message: string, status = 400) => errors.consulRequest(status, message);

/** A write naming a node other than this agent's (catalog register, session create). */
export const refuseExternalNode = (nodeName: string) =>
  refuse(
    `Node "${nodeName}" is not this agent: Meshwork serves one node per agent, so register services of that node through its own agent`,
  );
