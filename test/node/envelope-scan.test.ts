/**
 * The relay's envelope check against the schema of record (SPEC §2): over generated frames,
 * valid, near-valid and hostile, `decode` (the single-pass scanner) must agree with
 * `JSON.parse` + the zod `EnvelopeSchema` + the r2 repeated-key rule on accept/reject, on the
 * echoed id, on every field it extracts and on `data`, and the relayed text must be the
 * sender's text with only `sender_id` added or overwritten.
 *
 * Runs in Node: the codec is runtime-free, and the property run is cheapest here.
 */
import fc from "fast-check";
import { describe, it } from "vitest";
import { EnvelopeSchema, decode, withSenderId } from "../../src/protocol.ts";

const SENDER = "0b6f3a5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";

/**
 * Generated cases per property. Each case is checked as generated and in MUTATIONS hostile
 * variants, so the two properties check at least 200,000 frames a run (counted below).
 */
const RUNS = Number(process.env.ENVELOPE_PROPERTY_RUNS ?? 20_000);
const MUTATIONS = 4;
const MIN_FRAMES = 200_000;
let checked = 0;

// ---- the reference: JSON.parse + zod + the repeated-key rule -------------------------------

interface Member {
  key: string;
  valueStart: number;
  valueEnd: number;
}

const STRING_TOKEN = /"(?:[^"\\]|\\.)*"/y;

/**
 * The top-level members of a text JSON.parse accepted as an object: decoded key names and
 * where each value's text sits. Written independently of the scanner (a regex for strings and
 * a bracket count), and trusting the text to be valid JSON, which JSON.parse has established.
 */
function topLevelMembers(text: string): { members: Member[]; lastValueEnd: number } {
  const members: Member[] = [];
  let depth = 0;
  let expectKey = false;
  let current: Member | null = null;
  let lastValueEnd = -1;
  const close = (end: number) => {
    if (!current) return;
    let e = end;
    while (/[ \t\n\r]/.test(text[e - 1] ?? "")) e--;
    current.valueEnd = e;
    lastValueEnd = e;
    members.push(current);
    current = null;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      STRING_TOKEN.lastIndex = i;
      const token = STRING_TOKEN.exec(text)?.[0] ?? "";
      if (depth === 1 && expectKey) {
        expectKey = false;
        let j = i + token.length;
        while (text[j] !== ":") j++;
        j++;
        while (/[ \t\n\r]/.test(text[j] ?? "")) j++;
        current = { key: JSON.parse(token) as string, valueStart: j, valueEnd: -1 };
        i = j - 1;
        continue;
      }
      i += token.length - 1;
    } else if (ch === "{" || ch === "[") {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (ch === "}" || ch === "]") {
      if (depth === 1) close(i);
      depth--;
    } else if (ch === "," && depth === 1) {
      close(i);
      expectKey = true;
    }
  }
  return { members, lastValueEnd };
}

interface Fields {
  type: string;
  id: string | undefined;
  receiver_id: string | undefined;
  sender_id: string | undefined;
}

type Expected =
  | { ok: false; id: string | undefined; identification: boolean }
  | { ok: true; envelope: Fields; data: string; relayed: string };

const NOT_AN_OBJECT = { ok: false, id: undefined, identification: false } as const;

function reference(text: string): Expected {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return NOT_AN_OBJECT;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return NOT_AN_OBJECT;
  const { members, lastValueEnd } = topLevelMembers(text);
  const valueOf = (member: Member) => text.slice(member.valueStart, member.valueEnd);
  const names = members.map((member) => member.key);
  const repeated = new Set(names).size !== names.length;
  const identification = members.some((member) => member.key === "type" && JSON.parse(valueOf(member)) === "identification");
  const parsed = EnvelopeSchema.safeParse(value);
  if (repeated || !parsed.success) {
    const raw = (value as { id?: unknown }).id;
    const once = names.filter((name) => name === "id").length === 1;
    const id = once && typeof raw === "string" && raw.length <= 128 ? raw : undefined;
    return { ok: false, id, identification };
  }
  const { type, id, receiver_id, sender_id } = parsed.data;
  const data = members.find((member) => member.key === "data");
  const sender = members.find((member) => member.key === "sender_id");
  const stamp = JSON.stringify(SENDER);
  // SPEC §2: the sender's text with only sender_id overwritten in place, or added as the last member.
  const relayed = sender
    ? text.slice(0, sender.valueStart) + stamp + text.slice(sender.valueEnd)
    : `${text.slice(0, lastValueEnd)},"sender_id":${stamp}${text.slice(lastValueEnd)}`;
  return { ok: true, envelope: { type, id, receiver_id, sender_id }, data: data ? valueOf(data) : "{}", relayed };
}

function fail(text: string, what: string, got: unknown, want: unknown): never {
  throw new Error(`${what} differs for ${JSON.stringify(text).slice(0, 400)}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

/**
 * Runs both and asserts they agree. Compared as text where values may nest 10,000 deep
 * (`data`, the relayed frame), since a recursive deep-equal would overflow the stack there.
 */
function agree(text: string): void {
  checked++;
  const want = reference(text);
  const got = decode(text);
  if (!want.ok) {
    if (got.ok || got.id !== want.id || got.identification !== want.identification) fail(text, "refusal", got, want);
    return;
  }
  if (!got.ok) return fail(text, "verdict", got, want);
  const { envelope } = got;
  for (const field of ["type", "id", "receiver_id", "sender_id"] as const) {
    if (envelope[field] !== want.envelope[field]) fail(text, field, envelope[field], want.envelope[field]);
  }
  const dataText = got.scan.dataStart < 0 ? "{}" : text.slice(got.scan.dataStart, got.scan.dataEnd);
  if (dataText !== want.data) fail(text, "data", dataText, want.data);
  const relayed = withSenderId(got, SENDER);
  if (relayed !== want.relayed) fail(text, "relayed text", relayed, want.relayed);
  // And as JSON: the same members in the same order, sender_id alone changed or appended.
  const before = topLevelMembers(text).members.map((m) => [m.key, text.slice(m.valueStart, m.valueEnd)]);
  const after = topLevelMembers(relayed).members.map((m) => [m.key, relayed.slice(m.valueStart, m.valueEnd)]);
  const at = before.findIndex(([key]) => key === "sender_id");
  if (at < 0) before.push(["sender_id", JSON.stringify(SENDER)]);
  else before[at] = ["sender_id", JSON.stringify(SENDER)];
  if (JSON.stringify(after) !== JSON.stringify(before)) fail(text, "relayed members", after, before);
  if ((JSON.parse(relayed) as { sender_id?: unknown }).sender_id !== SENDER) fail(text, "relayed sender_id", relayed, SENDER);
}

// ---- generators ----------------------------------------------------------------------------

/** JSON whitespace, mostly none, and now and then a character that only looks like it. */
const space = fc.oneof(
  { weight: 40, arbitrary: fc.constant("") },
  { weight: 12, arbitrary: fc.constantFrom(" ", "\n", "\t", "\r", "  ", " \r\n\t") },
  { weight: 1, arbitrary: fc.constantFrom("\u00a0", "\ufeff", "\u2028", "\v", "\f", "\u0000") },
);

/** Writes a string as a JSON literal, escaping some characters the long way. */
function literal(value: string, escapes: number[]): string {
  let out = '"';
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    const forced = escapes.includes(i);
    if (code === 0x22) out += '\\"';
    else if (code === 0x5c) out += forced ? "\\u005C" : "\\\\";
    else if (code < 0x20 || forced) {
      const hex = code.toString(16).padStart(4, "0");
      out += `\\u${i % 2 ? hex.toUpperCase() : hex}`;
    } else out += value[i];
  }
  return `${out}"`;
}

const escapes = fc.array(fc.nat(12), { maxLength: 3 });

/** String content: ordinary, escape-worthy, lone surrogates, UUIDs, and ids near 128. */
const content = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 8 }),
  fc.constantFrom("\ud800", "a\udc00b", "\ud83d\ude00", "identification", "ping", SENDER, SENDER.toUpperCase(), "", "\\", '"', "\u2028"),
  fc.constantFrom(127, 128, 129).map((n) => "x".repeat(n)),
);

const stringText = fc.tuple(content, escapes).map(([value, at]) => literal(value, at));

/** Number text, JSON.parse's grammar and just outside it. */
const numberText = fc.oneof(
  { weight: 3, arbitrary: fc.integer().map(String) },
  { weight: 3, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)) },
  { weight: 3, arbitrary: fc.constantFrom("12345678901234567890123", "9007199254740993", "-0", "1e400", "-1E-400", "1.50", "0.0e+0", "1E+5") },
  { weight: 1, arbitrary: fc.constantFrom("01", "1.", ".5", "+1", "-", "1e", "0x10", "NaN", "Infinity", "--1", "1e+") },
);

const literalText = fc.constantFrom("true", "false", "null", "true", "false", "null", "tru", "nul", "True");

const deepText = fc.oneof(
  fc.nat(2_000).map((n) => `${"[".repeat(n)}${"]".repeat(n)}`),
  fc.nat(300).map((n) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}`),
  fc.nat(50).map((n) => `${"[".repeat(n)}${"]".repeat(n + 1)}`),
);

/** A JSON value's text (sometimes subtly not JSON), nested a few levels. */
const valueText: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 4, arbitrary: stringText },
    { weight: 3, arbitrary: numberText },
    { weight: 1, arbitrary: literalText },
    {
      weight: 2,
      arbitrary: fc
        .array(fc.tuple(space, tie("value"), space), { maxLength: 3 })
        .map((items) => `[${items.map(([a, v, b]) => a + v + b).join(",")}]`),
    },
    {
      weight: 2,
      arbitrary: fc
        .array(fc.tuple(stringText, space, tie("value")), { maxLength: 3 })
        .map((members) => `{${members.map(([k, s, v]) => `${k}${s}:${v}`).join(",")}}`),
    },
  ),
})).value;

/** Top-level key names: the envelope's own, their look-alikes, and anything else. */
const keyName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("type", "id", "data", "receiver_id", "sender_id", "log") },
  { weight: 1, arbitrary: fc.constantFrom("Type", "sender_id ", "sender", "__proto__", "constructor", "", "7", "dat", "identification") },
  { weight: 2, arbitrary: fc.string({ maxLength: 6 }) },
);

/** A value fit for the field it is under, most of the time. */
function valueFor(key: string): fc.Arbitrary<string> {
  if (key === "type") return fc.oneof({ weight: 5, arbitrary: stringText }, { weight: 1, arbitrary: valueText });
  if (key === "id" || key === "receiver_id" || key === "sender_id") {
    return fc.oneof({ weight: 5, arbitrary: stringText }, { weight: 1, arbitrary: valueText });
  }
  if (key === "data") {
    return fc.oneof(
      { weight: 5, arbitrary: valueText.filter((text) => text.startsWith("{")) },
      { weight: 1, arbitrary: fc.constant("{}") },
      { weight: 1, arbitrary: valueText },
    );
  }
  return fc.oneof({ weight: 30, arbitrary: valueText }, { weight: 1, arbitrary: deepText.map((deep) => `{"deep":${deep}}`) }, { weight: 1, arbitrary: deepText });
}

const memberText = keyName.chain((name) =>
  fc.tuple(escapes, space, space, valueFor(name), space).map(([at, a, b, value, c]) => `${a}${literal(name, at)}${b}:${c}${value}`),
);

/** An object frame; `type` is put first most of the time so that most frames are valid. */
const objectFrame = fc
  .tuple(space, fc.boolean(), stringText, fc.array(memberText, { maxLength: 7 }), space, space)
  .map(([before, typed, type, members, inside, after]) => {
    const all = typed ? [`"type":${type}`, ...members] : members;
    return `${before}{${all.join(",")}${inside}}${after}`;
  });

const MUTATIONS_BY_NAME = ["truncate", "insert", "delete", "trailing", "bom", "repeat", "wrap", "rotate"] as const;
const GARBAGE = [",", "}", "{", '"', "\\", ":", "]", "x", " ", "\u0000", "\ufeff", "\ud800"];

/** Ways a frame goes wrong on the wire, each applied at a place drawn from `seed`. */
function mutate(text: string, seed: number, round: number): string {
  const draw = Math.imul(seed ^ (round * 0x9e3779b9), 0x85ebca6b) >>> 0;
  const i = text.length === 0 ? 0 : draw % text.length;
  const ch = GARBAGE[(draw >>> 8) % GARBAGE.length] ?? "x";
  switch (MUTATIONS_BY_NAME[(draw >>> 16) % MUTATIONS_BY_NAME.length]) {
    case "truncate":
      return text.slice(0, i);
    case "insert":
      return text.slice(0, i) + ch + text.slice(i);
    case "delete":
      return text.slice(0, i) + text.slice(i + 1);
    case "trailing":
      return `${text}${ch}`;
    case "bom":
      return `\ufeff${text}`;
    case "repeat": {
      // The first member written again in front, its key escaped: a repeated key (SPEC §2 r2).
      const match = /^\s*\{("(?:[^"\\]|\\.)*")(\s*:[^,}]*)/.exec(text);
      if (!match?.[1]) return `{"type":"x","type":"x"}`;
      const escapedKey = match[1].replace(/[a-z_]/, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
      return text.replace("{", `{${escapedKey}${match[2]},`);
    }
    case "wrap":
      return `[${text}]`;
    default:
      return text.slice(i) + text.slice(0, i);
  }
}

/** Checks a frame and its hostile variants. */
function agreeWithVariants(text: string, seed: number): void {
  agree(text);
  for (let round = 0; round < MUTATIONS; round++) agree(mutate(text, seed, round));
}

/** Well-formed envelopes as peers really send them, with the spoofing attempts of SPEC §2 r2. */
const realistic = fc
  .record({
    id: fc.option(fc.uuid(), { nil: undefined }),
    type: fc.constantFrom("message", "ping", "identification", "webrtc_sdp", "pong", "get_chats"),
    receiver: fc.option(fc.uuid(), { nil: undefined }),
    sender: fc.option(fc.constantFrom(SENDER, "spoofed", "\\u0073poofed"), { nil: undefined }),
    data: fc.option(
      fc.dictionary(
        fc.string({ maxLength: 4 }),
        fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 })),
        { maxKeys: 3 },
      ),
      { nil: undefined },
    ),
    twice: fc.constantFrom(null, "sender_id", "sender\\u005fid", "type", "id", "data", "extra"),
    spaced: fc.boolean(),
  })
  .map(({ id, type, receiver, sender, data, twice, spaced }) => {
    const members: string[] = [];
    if (id !== undefined) members.push(`"id":"${id}"`);
    members.push(`"type":"${type}"`);
    if (data !== undefined) members.push(`"data":${JSON.stringify(data)}`);
    if (receiver !== undefined) members.push(`"receiver_id":"${receiver}"`);
    if (sender !== undefined) members.push(`"sender_id":"${sender}"`);
    if (twice) members.push(`"${twice}":${twice.startsWith("data") ? "{}" : '"x"'}`);
    return spaced ? `{ ${members.join(" , ")} }\n` : `{${members.join(",")}}`;
  });

// ---- the properties ------------------------------------------------------------------------

describe("decode agrees with JSON.parse + EnvelopeSchema (SPEC §2)", () => {
  it(`on ${RUNS} generated object frames, valid and near-valid, each with ${MUTATIONS} hostile variants`, () => {
    fc.assert(fc.property(objectFrame, fc.nat(), agreeWithVariants), { numRuns: RUNS });
  }, 60_000);

  it(`on ${RUNS} realistic envelopes, spoofed and repeated sender_id included, each with ${MUTATIONS} hostile variants`, () => {
    fc.assert(fc.property(realistic, fc.nat(), agreeWithVariants), { numRuns: RUNS });
  }, 60_000);

  it("on the frames of SPEC §2 and §9 written out", () => {
    for (const text of [
      '{"type":"x","sender_id":"a","sender\\u005fid":"b"}',
      '{"type":"x","data":{"a":1,"a":2}}',
      `{"type":"x","data":{"deep":${"[".repeat(10_000)}${"]".repeat(10_000)}}}`,
      `${"[".repeat(10_000)}${"]".repeat(10_000)}`,
      '{"type":"x","n":12345678901234567890123,"f":1e999}',
      '{"type":"\\ud800","id":"\udc00"}',
      '\ufeff{"type":"x"}',
      '{"type":"x"} garbage',
      ' \t\r\n{ "type" : "x" , "data" : { } } \n',
      `{"type":"x","id":"${"y".repeat(129)}"}`,
    ]) {
      agree(text);
    }
  });

  it(`checked at least ${MIN_FRAMES} frames in this run`, () => {
    if (RUNS * 2 * (1 + MUTATIONS) >= MIN_FRAMES && checked < MIN_FRAMES) throw new Error(`only ${checked} frames were checked`);
  });
});
