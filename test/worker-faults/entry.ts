/**
 * The Worker of the `worker-faults` test project: the real Worker and classes, with a fault
 * switch that exists only in this test module (production's entry, src/index.ts, has none,
 * so no var or request can turn it on there). The tests share this isolate with the
 * Durable Objects, so they flip the switch by importing `faults`.
 */
import { CallRoom as RealCallRoom } from "../../src/call-room";
import { Hub as RealHub } from "../../src/hub";
import type { Env } from "../../src/env";
import { type HubRecords, UserRecord as RealUserRecord, type UserState } from "../../src/directory";

export { Directory } from "../../src/index";
export { default } from "../../src/index";

export const faults = {
  /** Every call a hub makes to a directory object (control or user record) fails. */
  directoryUnreachable: false,
  /** Owner lookups from hubs wait for this before reaching the user record. */
  stall: null as Promise<void> | null,
  /** The next push to these hubs (by iota_id) fails once each. */
  failNextPush: new Set<string>(),
  /** The next push to these users' records (by user_id) fails once each, after storing the record. */
  failNextRecordPush: new Set<string>(),
  /** Revoking pushes to these users' records fail before anything is stored, for as long as they are listed. */
  refuseRevokingRecordPush: new Set<string>(),
};

/** A stub whose every method rejects, as an unreachable object's would. */
const unreachable = new Proxy(
  {},
  { get: () => () => Promise.reject(new Error("directory object unreachable (injected)")) },
);

/** The env hubs and call rooms see: their directory bindings fail or stall while a fault says so. */
function faultyEnv(env: Env): Env {
  const control = env.BUILTIN_DIRECTORY;
  const records = env.USER_RECORD;
  return {
    ...env,
    BUILTIN_DIRECTORY: {
      idFromName: (name: string) => control.idFromName(name),
      get: (id: DurableObjectId) => (faults.directoryUnreachable ? unreachable : control.get(id)),
    } as unknown as Env["BUILTIN_DIRECTORY"],
    USER_RECORD: {
      idFromName: (name: string) => records.idFromName(name),
      get: (id: DurableObjectId) => {
        if (faults.directoryUnreachable) return unreachable;
        const stub = records.get(id);
        const ownerOf = async (askingIota: string) => {
          await faults.stall;
          return stub.ownerOf(askingIota);
        };
        return new Proxy(stub, { get: (target, name) => (name === "ownerOf" ? ownerOf : Reflect.get(target, name)) });
      },
    } as unknown as Env["USER_RECORD"],
  };
}

export class Hub extends RealHub {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, faultyEnv(env));
  }

  override async applyRecords(iotaId: string, records: HubRecords): Promise<void> {
    if (faults.failNextPush.delete(iotaId)) throw new Error("push failed (injected)");
    return super.applyRecords(iotaId, records);
  }
}

export class CallRoom extends RealCallRoom {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, faultyEnv(env));
  }
}

export class UserRecord extends RealUserRecord {
  /** Fails after the record is stored and before the call sockets are closed: the worst place. */
  override async applyRecord(userId: string, state: UserState): Promise<void> {
    if (state.revoke && faults.refuseRevokingRecordPush.has(userId)) throw new Error("push refused (injected)");
    if (!faults.failNextRecordPush.delete(userId)) return super.applyRecord(userId, state);
    const closeCalls = this.env.CALL_ROOM;
    const failing = { ...this.env, CALL_ROOM: { idFromName: (name: string) => closeCalls.idFromName(name), get: () => unreachable } };
    const saved = this.env;
    this.env = failing as unknown as Env;
    try {
      await super.applyRecord(userId, state);
    } finally {
      this.env = saved;
    }
  }
}
