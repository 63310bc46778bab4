/**
 * docs/protocol.md describes the code, so its examples are checked against it: every fenced
 * JSON block is tagged with who sends it, parsed, and held to the Worker's envelope codec and
 * the frame schemas (src/peer/schemas.ts). The doc must also show every frame kind both ways,
 * name every error of SPEC §9 and every close code the Omikron sends.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  CallIdentificationSchema,
  ClientChangedRequestSchema,
  ClientIdentificationSchema,
  ErrorFrameSchema,
  FrameSchema,
  IotaIdentificationSchema,
  OMIKRON_FRAMES,
  PEER_FRAMES,
  PingSchema,
} from "../../src/peer/schemas.ts";
import { ERRORS, InboundFrame, decode, isReservedType, isUuid, withSenderId } from "../../src/protocol.ts";

const DOC = readFileSync(new URL("../../docs/protocol.md", import.meta.url), "utf8");

interface Example {
  direction: string;
  text: string;
  line: number;
}

/** Every ```json block with its tag (```json peer / omikron / relayed) and line number. */
function examples(): Example[] {
  const found: Example[] = [];
  const fence = /^```json(?: (\w+))?\n([\s\S]*?)^```$/gm;
  for (const match of DOC.matchAll(fence)) {
    const line = DOC.slice(0, match.index).split("\n").length;
    found.push({ direction: match[1] ?? "", text: match[2] ?? "", line });
  }
  return found;
}

/** The schemas among `schemas` an example satisfies. */
function matching(schemas: readonly z.ZodType[], value: unknown): z.ZodType[] {
  return schemas.filter((schema) => schema.safeParse(value).success);
}

const PEER_SCHEMAS_BY_TYPE: Record<string, readonly z.ZodType[]> = {
  identification: [IotaIdentificationSchema, ClientIdentificationSchema, CallIdentificationSchema],
  ping: [PingSchema],
  client_changed: [ClientChangedRequestSchema],
};

/**
 * Checks one example against the code, throwing on a mismatch; answers the frame schemas it
 * satisfies, so the doc's coverage of frame kinds can be checked.
 */
function check(example: Example): z.ZodType[] {
  const value: unknown = JSON.parse(example.text);
  if (example.direction === "peer") {
    // What the Worker's codec accepts from a peer, and the fields its type requires.
    expect(decode(example.text).ok).toBe(true);
    const frame = FrameSchema.parse(value);
    expect(isReservedType(frame.type)).toBe(false);
    const schemas = PEER_SCHEMAS_BY_TYPE[frame.type];
    if (!schemas) return [];
    const matched = matching(schemas, value);
    expect(matched.length, `no schema of ${frame.type} matches`).toBeGreaterThan(0);
    return matched;
  }
  if (example.direction === "omikron") {
    const matched = matching(OMIKRON_FRAMES, value);
    expect(matched.length, `no Omikron frame schema matches ${example.text}`).toBeGreaterThan(0);
    const error = ErrorFrameSchema.safeParse(value);
    if (error.success) expect(error.data.log.log_level).toBe(ERRORS[error.data.type]);
    return matched;
  }
  // A relayed frame: a valid envelope stamped with the checked sender.
  expect(decode(example.text).ok).toBe(true);
  expect(isUuid(FrameSchema.parse(value).sender_id)).toBe(true);
  return [];
}

const all = examples();

describe("docs/protocol.md", () => {
  it("has tagged examples", () => {
    expect(all.length).toBeGreaterThan(20);
    for (const { direction, line } of all) expect(["peer", "omikron", "relayed"], `block at line ${line}`).toContain(direction);
  });

  for (const example of all) {
    it(`line ${example.line}: the ${example.direction} frame is what the code accepts`, () => {
      check(example);
    });
  }

  it("shows each relayed frame as the relay makes it from the peer frame shown before it", () => {
    const relayedExamples = all.filter((example) => example.direction === "relayed");
    expect(relayedExamples.length).toBeGreaterThan(2);
    for (const example of relayedExamples) {
      const sent = all.filter((other) => other.direction === "peer" && other.line < example.line).at(-1);
      if (!sent) throw new Error(`no peer frame before the relayed one at line ${example.line}`);
      const decoded = decode(sent.text);
      if (!(decoded instanceof InboundFrame)) throw new Error(`line ${sent.line} is not a valid envelope`);
      const senderId = String(FrameSchema.parse(JSON.parse(example.text)).sender_id);
      expect(JSON.parse(withSenderId(decoded, senderId)), `line ${example.line}`).toEqual(JSON.parse(example.text));
    }
  });

  it("shows every frame kind the Omikron writes and every one a peer sends it", () => {
    const covered = new Set(all.flatMap(check));
    const missing = [...OMIKRON_FRAMES, ...PEER_FRAMES].filter((schema) => !covered.has(schema));
    expect(missing.map((schema) => JSON.stringify(z.toJSONSchema(schema).properties?.type))).toEqual([]);
  });

  it("names every error type and every close code", () => {
    for (const type of Object.keys(ERRORS)) expect(DOC).toContain(`| \`${type}\``);
    for (const code of [1000, 1001, 1006, 1008, 1009, 1011, 4001, 4003, 4008]) expect(DOC).toMatch(new RegExp(`^\\| ${code} \\|`, "m"));
  });
});
