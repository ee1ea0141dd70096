/**
 * @module The child process that encodes a proxy's CSR (csr-asn1.ts), forked by csr.ts for
 * one request and gone after it, so the ASN.1 packages' memory leaves with it. It gets the
 * public key and names, answers the request info, gets the signature the parent made with the
 * key (the key never comes here), answers the request and exits. Messages over the IPC channel
 * (advanced serialization: Uint8Arrays as they are):
 *   parent: { spiffeId, service, spki }   child: { info }
 *   parent: { signature }                 child: { csr }      (then the child exits)
 *   child on any failure: { error }
 */
import { draftCsr, type CsrDraft } from './csr-asn1.js';

let draft: CsrDraft | undefined;

process.on(
  'message',
  (m: { spiffeId?: string; service?: string; spki?: Uint8Array; signature?: Uint8Array }) => {
    try {
      if (draft === undefined) {
        draft = draftCsr(String(m.spiffeId), String(m.service), m.spki ?? new Uint8Array());
        process.send?.({ info: draft.info });
        return;
      }
      process.send?.({ csr: draft.signed(m.signature ?? new Uint8Array()) }, () =>
        process.disconnect(),
      );
    } catch (err) {
      process.send?.({ error: err instanceof Error ? err.message : String(err) }, () =>
        process.disconnect(),
      );
    }
  },
);
// The parent gone (or done): nothing more to do.
process.on('disconnect', () => process.exit(0));
