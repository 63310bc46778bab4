/**
 * Unit tests of the pure modules: the wire codec (SPEC §2, §6, §9), the per-socket limits
 * (SPEC §9) and credential hashing (SPEC §8.1). No Durable Object is involved.
 */
import { describe, expect, it } from "vitest";
import { credentialMatches, storedFormOf, tokenMatches } from "../../src/credentials";
import { frameBytes, isOversize } from "../../src/limits";
import {
  ERRORS,
  type ErrorType,
  OMIKRON_ID,
  type Envelope,
  type InboundFrame,
  decode,
  errorFrame,
  frame,
  isReservedType,
  isUuid,
  normalizeId,
  parseIdList,
  parseLastPing,
  withSenderId,
  writeIdList,
} from "../../src/protocol";
import { sha256Hex } from "./support";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const SENDER = "0b6f3a5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";

/** Decodes a frame that must be valid. */
function decodeValid(text: string): InboundFrame {
  const decoded = decode(text);
  if (!decoded.ok) throw new Error(`expected a valid envelope: ${text.slice(0, 80)}`);
  return decoded;
}

/** What a valid frame offers the hub: the envelope's fields and its data. */
function readOf(text: string): { envelope: Envelope; data: Record<string, unknown> } {
  const decoded = decodeValid(text);
  return { envelope: decoded.envelope, data: decoded.data };
}

function envelopeOf(fields: Partial<Envelope> & { type: string }): Envelope {
  return { id: undefined, receiver_id: undefined, sender_id: undefined, ...fields };
}

function deepArray(depth: number): string {
  return `${"[".repeat(depth)}${"]".repeat(depth)}`;
}

describe("decode (SPEC §2 envelope rules)", () => {
  it("accepts a minimal envelope and treats missing data as an empty object", () => {
    expect(readOf('{"type":"get_chats"}')).toEqual({ envelope: envelopeOf({ type: "get_chats" }), data: {} });
  });

  it("accepts a full envelope, reads its fields and keeps data whole", () => {
    const text = JSON.stringify({
      id: "r1",
      type: "message",
      log: { message: "hi", log_level: 0 },
      data: { text: "hello", extra: [1, 2] },
      receiver_id: SENDER,
      sender_id: OMIKRON_ID,
      custom: { nested: true },
    });
    expect(readOf(text)).toEqual({
      envelope: { id: "r1", type: "message", receiver_id: SENDER, sender_id: OMIKRON_ID },
      data: { text: "hello", extra: [1, 2] },
    });
  });

  it("reads escaped field values decoded", () => {
    const text = '{"type":"a\\u005fb","id":"\\"q\\"","receiver_id":"\\u0041","sender_id":"\\ud83d\\ude00"}';
    expect(readOf(text).envelope).toEqual({ type: "a_b", id: '"q"', receiver_id: "A", sender_id: "😀" });
  });

  it.each([
    ["malformed JSON", "{"],
    ["an empty frame", ""],
    ["a JSON array", '[{"type":"ping"}]'],
    ["a JSON string", '"ping"'],
    ["a JSON number", "42"],
    ["JSON null", "null"],
    ["a 10 000-deep array", deepArray(10_000)],
    ["an object after a byte-order mark", '\ufeff{"type":"x"}'],
    ["an object followed by garbage", '{"type":"x"} x'],
    ["two objects", '{"type":"x"}{"type":"x"}'],
    ["an object with a trailing comma", '{"type":"x",}'],
    ["an object with an invalid number inside data", '{"id":"r1","type":"x","data":{"n":01}}'],
  ])("rejects %s as not an object, with no id to echo", (_name, text) => {
    expect(decode(text)).toEqual({ ok: false, id: undefined, identification: false });
  });

  it.each([
    ["type is missing", { id: "r1", data: {} }],
    ["type is a number", { id: "r1", type: 7 }],
    ["type is null", { id: "r1", type: null }],
    ["data is null", { id: "r1", type: "x", data: null }],
    ["data is an array", { id: "r1", type: "x", data: [] }],
    ["data is a string", { id: "r1", type: "x", data: "{}" }],
    ["data is a number", { id: "r1", type: "x", data: 1 }],
    ["receiver_id is a number", { id: "r1", type: "x", receiver_id: 5 }],
    ["receiver_id is null", { id: "r1", type: "x", receiver_id: null }],
    ["sender_id is an object", { id: "r1", type: "x", sender_id: {} }],
    ["sender_id is an array", { id: "r1", type: "x", sender_id: [SENDER] }],
  ])("rejects an object whose %s, echoing its valid id", (_name, value) => {
    expect(decode(JSON.stringify(value))).toEqual({ ok: false, id: "r1", identification: false });
  });

  it.each([
    ["a number", 17],
    ["null", null],
    ["an object", { a: 1 }],
    ["a string of 129 characters", "x".repeat(129)],
  ])("rejects an id that is %s and offers no id to echo", (_name, id) => {
    expect(decode(JSON.stringify({ id, type: "x" }))).toEqual({ ok: false, id: undefined, identification: false });
  });

  it("accepts any string id of exactly 128 characters and keeps it verbatim", () => {
    const id = `${"Ab-".repeat(42)}zz`;
    expect(id).toHaveLength(128);
    expect(readOf(JSON.stringify({ id, type: "x" }))).toEqual({ envelope: envelopeOf({ id, type: "x" }), data: {} });
  });

  it("does not validate ids inside receiver_id or sender_id beyond their being strings", () => {
    const value = { type: "x", receiver_id: "not-a-uuid", sender_id: "" };
    expect(readOf(JSON.stringify(value))).toEqual({ envelope: envelopeOf(value), data: {} });
  });

  it("ignores log whatever its shape", () => {
    expect(readOf('{"type":"x","log":"free text"}')).toEqual({ envelope: envelopeOf({ type: "x" }), data: {} });
  });

  it("accepts a 10 000-deep array inside data", () => {
    const text = `{"type":"x","data":{"deep":${deepArray(10_000)}}}`;
    expect(decode(text).ok).toBe(true);
  });

  it("recognises an identification attempt that is not a valid envelope", () => {
    expect(decode('{"type":"identification","id":5}')).toEqual({ ok: false, id: undefined, identification: true });
    expect(decode('{"type":"identification","data":null,"id":"r1"}')).toEqual({ ok: false, id: "r1", identification: true });
  });
});

describe("repeated top-level keys (SPEC §2 r2)", () => {
  it.each([
    ["sender_id twice", `{"type":"x","id":"r1","sender_id":"${SENDER}","sender_id":"${OMIKRON_ID}"}`],
    ["sender_id twice, once escaped", `{"type":"x","id":"r1","sender\\u005fid":"${SENDER}","sender_id":"${OMIKRON_ID}"}`],
    ["type twice with the same value", '{"type":"x","type":"x","id":"r1"}'],
    ["data twice", '{"type":"x","id":"r1","data":{},"data":{}}'],
    ["receiver_id twice, escaped every way", '{"type":"x","id":"r1","\\u0072eceiver_id":"a","receiver\\u005Fid":"a"}'],
    ["an unknown key twice", '{"type":"x","id":"r1","extra":1,"extra":1}'],
    ["log twice", '{"type":"x","id":"r1","log":{},"log":{}}'],
    ["an unknown key twice among many", `{"type":"x","id":"r1",${Array.from({ length: 40 }, (_, i) => `"k${i}":${i}`).join(",")},"k7":0}`],
  ])("refuses %s, echoing the single id", (_name, text) => {
    expect(JSON.parse(text)).toBeTypeOf("object");
    expect(decode(text)).toEqual({ ok: false, id: "r1", identification: false });
  });

  it("refuses an id written twice and echoes neither", () => {
    expect(decode('{"type":"x","id":"a","id":"b"}')).toEqual({ ok: false, id: undefined, identification: false });
  });

  it("treats a repeated type as an identification attempt if either says so", () => {
    expect(decode('{"type":"identification","type":"x"}')).toEqual({ ok: false, id: undefined, identification: true });
    expect(decode('{"type":"x","type":"identification"}')).toEqual({ ok: false, id: undefined, identification: true });
  });

  it("does not check keys inside data or deeper", () => {
    const text = '{"type":"x","data":{"a":1,"a":2,"n":{"b":1,"b":2}},"list":[{"c":1,"c":1}]}';
    expect(decode(text).ok).toBe(true);
  });

  it("tells keys apart by their decoded names only", () => {
    expect(decode('{"type":"x","Sender_id":"a","sender_id":"b","sender_id ":"c"}').ok).toBe(true);
  });
});

describe("ids (SPEC §2)", () => {
  it("recognises UUIDs in any case without a version check", () => {
    expect(isUuid(OMIKRON_ID)).toBe(true);
    expect(isUuid("ABCDEF01-2345-6789-ABCD-EF0123456789")).toBe(true);
    expect(isUuid("abcdef01-2345-6789-abcd-ef012345678")).toBe(false);
    expect(isUuid("abcdef0123456789abcdef0123456789")).toBe(false);
    expect(isUuid(" abcdef01-2345-6789-abcd-ef0123456789")).toBe(false);
    expect(isUuid(42)).toBe(false);
  });

  it("lower-cases UUIDs and answers null for anything else", () => {
    expect(normalizeId("ABCDEF01-2345-6789-ABCD-EF0123456789")).toBe("abcdef01-2345-6789-abcd-ef0123456789");
    expect(normalizeId("nope")).toBeNull();
    expect(normalizeId(undefined)).toBeNull();
  });

  it("reserves exactly the types the Omikron originates", () => {
    for (const type of ["identification_response", "pong", "client_connected", "client_disconnected", "iota_connected", "iota_disconnected"]) {
      expect(isReservedType(type)).toBe(true);
    }
    for (const type of ["ping", "identification", "error_invalid_data", "client_changed", "Pong"]) {
      expect(isReservedType(type)).toBe(false);
    }
  });
});

describe("id lists (SPEC §2)", () => {
  it("reads a trailing comma, a leading comma and no extra comma as the same list", () => {
    expect(parseIdList("a,b,")).toEqual(["a", "b"]);
    expect(parseIdList(",a,b")).toEqual(["a", "b"]);
    expect(parseIdList("a,b")).toEqual(["a", "b"]);
  });

  it("trims items and drops empty ones", () => {
    expect(parseIdList(" a , b ")).toEqual(["a", "b"]);
    expect(parseIdList("a,,  ,b,")).toEqual(["a", "b"]);
    expect(parseIdList("")).toEqual([]);
    expect(parseIdList(",")).toEqual([]);
  });

  it("accepts a JSON array of strings with the same leniency", () => {
    expect(parseIdList(["a", " b ", ""])).toEqual(["a", "b"]);
    expect(parseIdList([])).toEqual([]);
  });

  it.each([
    ["a number", 5],
    ["null", null],
    ["undefined", undefined],
    ["an object", { a: "b" }],
    ["an array holding a number", ["a", 1]],
    ["an array holding null", [null]],
  ])("answers null for %s", (_name, value) => {
    expect(parseIdList(value)).toBeNull();
  });

  it("writes every item followed by a comma and an empty list as an empty string", () => {
    expect(writeIdList([])).toBe("");
    expect(writeIdList(["a"])).toBe("a,");
    expect(writeIdList(["a", "b"])).toBe("a,b,");
    expect(writeIdList(new Set(["x", "y"]))).toBe("x,y,");
  });
});

describe("last_ping (SPEC §6)", () => {
  it.each([
    ["a number", 42, 42],
    ["zero", 0, 0],
    ["a fraction", 12.5, 12.5],
    ["-1", -1, -1],
    ["a one-element array", [42], 42],
    ["a one-element array holding -1", [-1], -1],
  ])("accepts %s", (_name, value, expected) => {
    expect(parseLastPing({ last_ping: value })).toBe(expected);
  });

  it.each([
    ["-2", -2],
    ["-1.5", -1.5],
    ["a numeric string", "42"],
    ["null", null],
    ["a boolean", true],
    ["an object", { ms: 1 }],
    ["an empty array", []],
    ["a two-element array", [1, 2]],
    ["a nested array", [[1]]],
    ["an array holding a string", ["1"]],
    ["an array holding -2", [-2]],
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
  ])("rejects %s", (_name, value) => {
    expect(parseLastPing({ last_ping: value })).toBeNull();
  });

  it("rejects a number too large for a double, which JSON reads as Infinity", () => {
    expect(parseLastPing(decodeValid('{"type":"ping","data":{"last_ping":1e999}}').data)).toBeNull();
  });

  it("answers undefined when last_ping is absent", () => {
    expect(parseLastPing({})).toBeUndefined();
    expect(parseLastPing({ other: 1 })).toBeUndefined();
  });
});

describe("frames the Omikron writes (SPEC §2, §9)", () => {
  it("writes id, type, log, data and the Omikron's sender_id, in that order", () => {
    expect(frame("pong", "req-1", "pong", -1, { last_ping: 12 })).toBe(
      `{"id":"req-1","type":"pong","log":{"message":"pong","log_level":-1},"data":{"last_ping":12},"sender_id":"${OMIKRON_ID}"}`,
    );
  });

  it("writes an empty data object when none is given", () => {
    expect(JSON.parse(frame("iota_connected", "p", "hello", 0))).toEqual({
      id: "p",
      type: "iota_connected",
      log: { message: "hello", log_level: 0 },
      data: {},
      sender_id: OMIKRON_ID,
    });
  });

  it("gives a frame without a request id a fresh UUID v4", () => {
    const first = JSON.parse(frame("client_connected", undefined, "m", 0)) as { id: string };
    const second = JSON.parse(frame("client_connected", undefined, "m", 0)) as { id: string };
    expect(first.id).toMatch(UUID_V4);
    expect(second.id).toMatch(UUID_V4);
    expect(first.id).not.toBe(second.id);
  });

  it.each([
    ["error_not_authenticated", 2],
    ["error_invalid_data", 2],
    ["error_no_iota", 1],
    ["error_user_offline", 1],
    ["error_invalid_user_id", 2],
    ["error_too_many_connections", 2],
    ["error_call_full", 2],
    ["error_rate_limited", 1],
    ["error_too_large", 2],
  ] satisfies [ErrorType, number][])("writes %s with log_level %i", (type, level) => {
    expect(JSON.parse(errorFrame(type, "req-9", "why", { receiver_id: SENDER }))).toEqual({
      id: "req-9",
      type,
      log: { message: "why", log_level: level },
      data: { receiver_id: SENDER },
      sender_id: OMIKRON_ID,
    });
  });

  it("knows exactly the nine error types of SPEC §9", () => {
    expect(Object.keys(ERRORS).sort()).toEqual([
      "error_call_full",
      "error_invalid_data",
      "error_invalid_user_id",
      "error_no_iota",
      "error_not_authenticated",
      "error_rate_limited",
      "error_too_large",
      "error_too_many_connections",
      "error_user_offline",
    ]);
  });

  it("gives an error without a request id a fresh UUID v4", () => {
    const parsed = JSON.parse(errorFrame("error_too_large", undefined, "too large")) as { id: string };
    expect(parsed.id).toMatch(UUID_V4);
  });
});

describe("withSenderId (SPEC §2 relaying)", () => {
  it("adds sender_id after the last member and leaves the rest of the text byte-for-byte", () => {
    const text = '{ "type" : "get_chats", "zeta": 1, "id":"m1",\n "data":{"b":2,"a":1} }';
    expect(withSenderId(decodeValid(text), SENDER)).toBe(
      `{ "type" : "get_chats", "zeta": 1, "id":"m1",\n "data":{"b":2,"a":1},"sender_id":"${SENDER}" }`,
    );
  });

  it("keeps integers beyond double precision byte-for-byte when adding sender_id", () => {
    const text = '{"type":"x","data":{"n":12345678901234567890123,"f":1.50,"e":1E+400}}';
    expect(withSenderId(decodeValid(text), SENDER)).toBe(
      `{"type":"x","data":{"n":12345678901234567890123,"f":1.50,"e":1E+400},"sender_id":"${SENDER}"}`,
    );
  });

  it("overwrites an existing sender_id in place, keeping key order and unknown fields", () => {
    const text = JSON.stringify({ id: "m1", sender_id: "spoofed", type: "x", data: { z: 1, a: { b: [1, "2"] } }, extra: null });
    const relayed = withSenderId(decodeValid(text), SENDER);
    expect(relayed).toBe(
      JSON.stringify({ id: "m1", sender_id: SENDER, type: "x", data: { z: 1, a: { b: [1, "2"] } }, extra: null }),
    );
  });

  it("overwrites a non-UUID sender_id that comes last", () => {
    const text = '{"type":"x","sender_id":""}';
    expect(withSenderId(decodeValid(text), SENDER)).toBe(`{"type":"x","sender_id":"${SENDER}"}`);
  });

  it("relays a 10 000-deep array inside data unchanged when adding sender_id", () => {
    const deep = deepArray(10_000);
    const text = `{"type":"x","data":{"deep":${deep}}}`;
    expect(withSenderId(decodeValid(text), SENDER)).toBe(`{"type":"x","data":{"deep":${deep}},"sender_id":"${SENDER}"}`);
  });

  it("overwrites sender_id without moving integer-like keys or rounding big numbers", () => {
    const text = '{"type":"x", "sender_id" : "o\\"ld" ,"7":"seven","data":{"b":1,"10":2,"2":3},"n":12345678901234567890123}';
    expect(withSenderId(decodeValid(text), SENDER)).toBe(
      `{"type":"x", "sender_id" : "${SENDER}" ,"7":"seven","data":{"b":1,"10":2,"2":3},"n":12345678901234567890123}`,
    );
  });

  it("overwrites an escaped sender_id key, and none inside data", () => {
    const text = '{"type":"x","data":{"sender_id":"inner"},"s":"sender_id","sender_\\u0069d":"b"}';
    expect(withSenderId(decodeValid(text), SENDER)).toBe(
      `{"type":"x","data":{"sender_id":"inner"},"s":"sender_id","sender_\\u0069d":"${SENDER}"}`,
    );
  });

  it("adds sender_id just after the last member, keeping the whitespace around it", () => {
    expect(withSenderId(decodeValid(' {"type":"x"\n} \n'), SENDER)).toBe(` {"type":"x","sender_id":"${SENDER}"\n} \n`);
  });

  it("relays a 10 000-deep array inside data unchanged when overwriting sender_id", () => {
    const deep = deepArray(10_000);
    const text = `{"type":"x","sender_id":"old","data":{"deep":${deep}}}`;
    expect(withSenderId(decodeValid(text), SENDER)).toBe(`{"type":"x","sender_id":"${SENDER}","data":{"deep":${deep}}}`);
  });
});

describe("frame size (SPEC §9)", () => {
  it("passes a frame of exactly the limit and refuses one byte more", () => {
    expect(isOversize("a".repeat(64), 64)).toBe(false);
    expect(isOversize("a".repeat(65), 64)).toBe(true);
  });

  it("measures text in UTF-8 bytes, not characters", () => {
    // "é" is 2 bytes, "€" is 3, "😀" is 4 (two UTF-16 code units).
    expect(frameBytes("é€😀")).toBe(9);
    expect(isOversize("é".repeat(32), 64)).toBe(false);
    expect(isOversize(`${"é".repeat(32)}a`, 64)).toBe(true);
    expect(isOversize("€".repeat(4), 12)).toBe(false);
    expect(isOversize("€".repeat(4), 11)).toBe(true);
    expect(isOversize("😀".repeat(16), 64)).toBe(false);
    expect(isOversize(`😀`.repeat(16) + "a", 64)).toBe(true);
    expect(isOversize(`${"a".repeat(20)}${"€".repeat(14)}`, 62)).toBe(false);
    expect(isOversize(`${"a".repeat(20)}${"€".repeat(14)}`, 61)).toBe(true);
  });

  it("counts what TextEncoder would write, lone and reversed surrogates included", () => {
    for (const text of ["\ud800", "a\udc00b", "\udc00\ud800", "😀\ud83d", "\u07ff\u0800\uffff", ""]) {
      expect(frameBytes(text)).toBe(new TextEncoder().encode(text).byteLength);
    }
  });

  it("measures a binary frame by its byte length", () => {
    expect(frameBytes(new ArrayBuffer(10))).toBe(10);
    expect(isOversize(new ArrayBuffer(10), 10)).toBe(false);
    expect(isOversize(new ArrayBuffer(11), 10)).toBe(true);
  });
});

describe("credentials (SPEC §8.1)", () => {
  const key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

  it("stores the hex SHA-256 of the lower-cased credential text", async () => {
    expect(await storedFormOf(key)).toBe(await sha256Hex(key));
    expect(await storedFormOf(key.toUpperCase())).toBe(await sha256Hex(key));
    expect(await storedFormOf(key)).not.toContain(key);
  });

  it("matches a credential in any case against its stored form", async () => {
    const stored = await storedFormOf(key);
    expect(await credentialMatches(key, stored)).toBe(true);
    expect(await credentialMatches(key.toUpperCase(), stored)).toBe(true);
  });

  it("refuses a different credential, the stored form itself, and a malformed stored form", async () => {
    const stored = await storedFormOf(key);
    expect(await credentialMatches(`${key.slice(0, 63)}0`, stored)).toBe(false);
    expect(await credentialMatches(stored, stored)).toBe(false);
    expect(await credentialMatches(key, "")).toBe(false);
    expect(await credentialMatches(key, "0".repeat(64))).toBe(false);
  });

  it("matches a bearer token only when it is exactly the configured one", async () => {
    expect(await tokenMatches("test-admin-token", "test-admin-token")).toBe(true);
    expect(await tokenMatches("test-admin-token ", "test-admin-token")).toBe(false);
    expect(await tokenMatches("TEST-ADMIN-TOKEN", "test-admin-token")).toBe(false);
    expect(await tokenMatches("test", "test-admin-token")).toBe(false);
    expect(await tokenMatches("", "test-admin-token")).toBe(false);
  });
});
