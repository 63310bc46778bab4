/**
 * The Worker of `bench/storm.mjs`: the real Worker and classes, each public entry point of
 * each Durable Object counted per object, so the storm can show which objects a reconnect
 * storm reaches and how hard (issue 8). Bench-only: production's entry is src/index.ts. All
 * objects of a local run share this isolate, so one module-level table sees every call.
 * `GET /__bench/calls` answers the counts; `DELETE /__bench/calls` zeroes them.
 */
import type { Env } from "../src/env";
import app, { CallRoom, Directory, Hub, UserRecord } from "../src/index";

/** class → object id → calls received */
const calls = new Map<string, Map<string, number>>();

// A mixin's base must take `any[]` (TS2545); the classes wrapped here take (ctx, env).
type AnyClass = abstract new (...args: any[]) => object;

/** A subclass whose listed methods count a call to `this` object before running. */
function counted<C extends AnyClass>(base: C, name: string, methods: string[]): C {
  abstract class Counted extends base {}
  const target = Counted.prototype as unknown as Record<string, unknown>;
  const source = base.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const method of methods) {
    const original = source[method];
    if (typeof original !== "function") throw new Error(`${name}.${method} is not a method`);
    target[method] = function (this: { ctx: DurableObjectState }, ...args: unknown[]) {
      const perObject = calls.get(name) ?? new Map<string, number>();
      calls.set(name, perObject);
      const id = this.ctx.id.toString();
      perObject.set(id, (perObject.get(id) ?? 0) + 1);
      return original.apply(this, args);
    };
  }
  return Counted;
}

const BenchHub = counted(Hub, "Hub", ["fetch", "deliver", "applyRecords", "forgetUnknown", "presence"]);
const BenchCallRoom = counted(CallRoom, "CallRoom", ["fetch", "revokeMember", "heldSockets", "roster"]);
const BenchUserRecord = counted(UserRecord, "UserRecord", ["joinCall", "leaveCall", "ownerOf", "applyRecord"]);
const BenchDirectory = counted(Directory, "Directory", [
  "getIota",
  "getUser",
  "putIota",
  "deleteIota",
  "putUser",
  "deleteUser",
  "listIotas",
  "listUsers",
  "recordsForHub",
  "recordForUser",
]);
export { BenchHub as Hub, BenchCallRoom as CallRoom, BenchUserRecord as UserRecord, BenchDirectory as Directory };

function report(): Record<string, { objects: number; total: number; max: number }> {
  const out: Record<string, { objects: number; total: number; max: number }> = {};
  for (const name of ["Hub", "CallRoom", "UserRecord", "Directory"]) {
    const perObject = [...(calls.get(name)?.values() ?? [])];
    out[name] = { objects: perObject.length, total: perObject.reduce((a, b) => a + b, 0), max: Math.max(0, ...perObject) };
  }
  return out;
}

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response> {
    if (new URL(request.url).pathname === "/__bench/calls") {
      if (request.method === "DELETE") calls.clear();
      return Response.json(report());
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
