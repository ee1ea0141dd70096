/**
 * @module DnsWire: assembles a response from dns-packet's per-record encodings. Records owned
 * by the question name point at it (RFC 1035 §4.1.4 compression, which dns-packet does not do),
 * so one record's bytes do not depend on the name asked and are encoded once, then reused.
 */
import dnsPacket, { type Answer, type Question } from 'dns-packet';

/** The parts of dns-packet that the type definitions leave out. */
interface Codec {
  readonly answer: { encode(a: Answer): Buffer };
  /** encode() fills `buf` (and returns the question, not the buffer). */
  readonly question: {
    encode(q: Question, buf: Buffer, offset: number): unknown;
    encodingLength(q: Question): number;
  };
}
const codec = dnsPacket as unknown as Codec;

/** A pointer to offset 12, where the only question's name starts. */
const QUESTION_POINTER = Buffer.from([0xc0, 0x0c]);
const HEADER_BYTES = 12;
const FLAG_QR = 0x8000;

/**
 * The wire bytes of each record, by identity: answer builders reuse Answer objects while the
 * catalog is unchanged, so the bytes are reused too. `owner` guards the pointer form.
 */
const encoded = new WeakMap<Answer, { owner: string; bytes: Buffer }>();

/** One record's bytes; its name is a pointer to the question when it is the question name. */
export function recordBytes(record: Answer, questionName: string): Buffer {
  const pointed = record.name === questionName && record.type !== 'OPT';
  const owner = pointed ? questionName : '';
  const hit = encoded.get(record);
  if (hit !== undefined && hit.owner === owner) return hit.bytes;
  let bytes: Buffer;
  if (pointed) {
    // The root name encodes as one zero byte; the pointer replaces it.
    const rest = codec.answer.encode({ ...record, name: '.' } as Answer);
    bytes = Buffer.concat([QUESTION_POINTER, rest.subarray(1)]);
  } else bytes = codec.answer.encode(record);
  encoded.set(record, { owner, bytes });
  return bytes;
}

export interface WireResponse {
  readonly id: number;
  /** Header flags without QR and TC (they are set here). */
  readonly flags: number;
  readonly question: Question;
  /** The question's bytes as the query carried them, when they hold no pointer; else encoded. */
  readonly questionBytes?: Buffer;
  readonly answers: readonly Answer[];
  readonly authorities: readonly Answer[];
  /** Glue; the OPT record, if any, goes separately so it is never dropped. */
  readonly additionals: readonly Answer[];
  readonly opt?: Answer;
}

/**
 * Encodes a response of at most `budgetBytes`. What does not fit goes in this order: Additional
 * records (RFC 2181 §9: their loss needs no TC), then answers from the end, and then TC is set
 * so the client retries over TCP (RFC 1035 §4.2.1). The Authority section (the SOA of a
 * negative answer) goes with the answers.
 */
export function encodeResponse(
  r: WireResponse,
  budgetBytes: number,
): { bytes: Buffer; truncated: boolean } {
  const name = r.question.name;
  let question = r.questionBytes;
  if (question === undefined) {
    question = Buffer.alloc(codec.question.encodingLength(r.question));
    codec.question.encode(r.question, question, 0);
  }
  const answers = r.answers.map((a) => recordBytes(a, name));
  let authorities = r.authorities.map((a) => recordBytes(a, name));
  const glue = r.additionals.map((a) => recordBytes(a, name));
  const opt = r.opt === undefined ? undefined : recordBytes(r.opt, name);
  const fixed = HEADER_BYTES + question.length + (opt?.length ?? 0);
  let room = budgetBytes - fixed;
  let truncated = false;
  let keptAnswers = answers.length;
  const sizeOf = (list: readonly Buffer[], n = list.length): number => {
    let s = 0;
    for (let i = 0; i < n; i++) s += (list[i] as Buffer).length;
    return s;
  };
  let used = sizeOf(answers) + sizeOf(authorities);
  if (used > room) {
    truncated = true;
    used = 0;
    keptAnswers = 0;
    while (keptAnswers < answers.length && used + (answers[keptAnswers] as Buffer).length <= room) {
      used += (answers[keptAnswers] as Buffer).length;
      keptAnswers++;
    }
    authorities = [];
  }
  room -= used;
  let keptGlue = 0;
  while (keptGlue < glue.length && (glue[keptGlue] as Buffer).length <= room) {
    room -= (glue[keptGlue] as Buffer).length;
    keptGlue++;
  }
  const parts: Buffer[] = [Buffer.alloc(HEADER_BYTES), question];
  for (let i = 0; i < keptAnswers; i++) parts.push(answers[i] as Buffer);
  parts.push(...authorities);
  for (let i = 0; i < keptGlue; i++) parts.push(glue[i] as Buffer);
  if (opt !== undefined) parts.push(opt);
  const bytes = Buffer.concat(parts);
  bytes.writeUInt16BE(r.id, 0);
  bytes.writeUInt16BE(FLAG_QR | (r.flags & 0x7fff) | (truncated ? TC : 0), 2);
  bytes.writeUInt16BE(1, 4);
  bytes.writeUInt16BE(keptAnswers, 6);
  bytes.writeUInt16BE(authorities.length, 8);
  bytes.writeUInt16BE(keptGlue + (opt === undefined ? 0 : 1), 10);
  return { bytes, truncated };
}

const TC = 0x0200;

/**
 * The bytes of a query's first question (from offset 12: the name, type and class), or
 * undefined when the name is not plain labels (a pointer, a reserved label type) or is cut.
 * Echoing them saves encoding the name again, and echoes it exactly as asked.
 */
export function plainQuestionBytes(query: Buffer): Buffer | undefined {
  let at = HEADER_BYTES;
  for (;;) {
    const len = query[at];
    if (len === undefined || len > 63) return undefined;
    at += 1 + len;
    if (len === 0) break;
  }
  const end = at + 4;
  return end <= query.length ? query.subarray(HEADER_BYTES, end) : undefined;
}
