/**
 * The peer library's zod-free protocol facts (src/peer/wire.ts) against the Worker's codec and
 * the frame schemas, so the copy the browser bundle carries cannot drift from the Worker's.
 */
import { describe, expect, it } from "vitest";
import { OMIKRON_ID as WORKER_OMIKRON_ID, parseIdList, writeIdList as workerWriteIdList } from "../../src/protocol.ts";
import { PUSHES } from "../../src/peer/schemas.ts";
import { OMIKRON_ID, PUSH_TYPES, parseFrame, readIdList, writeIdList } from "../../src/peer/wire.ts";

describe("peer wire facts", () => {
  it("use the Worker's OMIKRON_ID and push types", () => {
    expect(OMIKRON_ID).toBe(WORKER_OMIKRON_ID);
    expect([...PUSH_TYPES].sort()).toEqual(Object.keys(PUSHES).sort());
  });

  it("write and read id lists as the codec does", () => {
    for (const ids of [[], ["a"], ["a", "b", "c"]]) expect(writeIdList(ids)).toBe(workerWriteIdList(ids));
    for (const list of ["", "a,b,", ",a,b", " a , b ,,", "a"]) expect(readIdList(list)).toEqual(parseIdList(list));
  });

  it("take a frame only when it is a JSON object with a string type", () => {
    expect(parseFrame('{"type":"x","data":{}}')).toEqual({ type: "x", data: {} });
    for (const text of ["pong", "[]", "null", '{"type":1}', '{"id":"a"}', "{"]) expect(parseFrame(text)).toBeNull();
  });
});
