/** @module refuse: the error of a request Consul refuses, answered as Consul's plain-text error. */
import { errors } from '../../core/errors.js';

/** A request Consul refuses with a plain-text message (400 unless `status` says otherwise). */
export const refuse = (message: string, status = 400) => errors.consulRequest(status, message);
