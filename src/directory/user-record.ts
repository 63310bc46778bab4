/**
 * One Durable Object per user (SPEC §8.1 r2): the user's credential digest and owning Iota,
 * and the calls the user is in, per socket. Call joins (the member may belong to any Iota)
 * and cross-hub owner lookups ask the object of the user they concern, so they spread over
 * as many objects as there are users and never meet in one. The control pushes the record
 * here on every admin change; a revocation closes the user's call sockets before the push
 * returns, so the admin reply follows the close frames (SPEC §8.2).
 */
import { DurableObject } from "cloudflare:workers";
import { configOf } from "../config";
import { credentialMatches } from "../credentials";
import type { Env } from "../env";
import { log } from "../log";
import { type JoinVerdict, NO_CREDENTIAL, type Owner, type UserState } from "./records";
import { controlOf } from "./stubs";

type Row = {
  iota_id: string | null;
  key_digest: string | null;
  version: number;
};

type CallSocket = {
  call_id: string;
  socket_id: string;
};

/**
 * Set in this isolate once the control answered that no r1 record is still on its way to a
 * user record. From then on no user record here asks the control, so a call join naming an
 * id nobody created reaches no object shared by the deployment (SPEC §8.1, §12); before that
 * each user record with nothing stored asks once per wake. The migration never restarts, so
 * the flag is never cleared; a new isolate asks once and learns it again.
 */
let controlMigrated = false;

/** Bound on the hubs remembered as having cached "unknown user" here. */
const MAX_WATCHERS = 1_000;

/** How long a hub remembers "unknown user" (SPEC §5.2 r2), and so how long it is watched. */
export const UNKNOWN_USER_TTL_MS = 60_000;

export class UserRecord extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** The record as stored; undefined until read this wake, null when there is none. */
  private row: Row | null | undefined;
  /** A record fetched from the control once, for objects from before this class had pushes. */
  private fetching: Promise<void> | null = null;
  /**
   * Hubs that were told "unknown user" and remember it (SPEC §5.2 r2), with when their
   * memory of it lapses: when the control creates the user, they are told to forget it at
   * once. Stored, because this object holds no socket and is evicted long before a hub's
   * 60 s are up; the alarm removes the rows as they lapse, and with them all storage of an
   * id nobody created.
   */
  private watching: Map<string, number> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
  }

  // ---- storage -------------------------------------------------------------------------

  private hasTable(name: string): boolean {
    return this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray().length > 0;
  }

  private stored(): Row | null {
    if (this.row === undefined) {
      this.row = this.hasTable("user_record")
        ? (this.sql.exec<Row>("SELECT iota_id, key_digest, version FROM user_record WHERE id = 1").toArray()[0] ?? null)
        : null;
    }
    return this.row;
  }

  private write(row: Row): void {
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS user_record (id INTEGER PRIMARY KEY CHECK (id = 1), iota_id TEXT, key_digest TEXT, version INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS call_sockets (call_id TEXT NOT NULL, socket_id TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (call_id, socket_id));
      CREATE TABLE IF NOT EXISTS closing (call_id TEXT NOT NULL, socket_id TEXT NOT NULL, PRIMARY KEY (call_id, socket_id));
    `);
    this.sql.exec(
      "INSERT INTO user_record (id, iota_id, key_digest, version) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET iota_id = excluded.iota_id, key_digest = excluded.key_digest, version = excluded.version",
      row.iota_id,
      row.key_digest,
      row.version,
    );
    this.row = row;
  }

  private callSockets(table: "call_sockets" | "closing", except?: string): CallSocket[] {
    if (!this.stored()) return [];
    return this.sql
      .exec<CallSocket>(`SELECT call_id, socket_id FROM ${table} WHERE call_id IS NOT ?`, except ?? null)
      .toArray();
  }

  /**
   * The record, fetched once from the control when this object holds none while the control
   * may still hold r1 records it has not pushed: records from before user records existed
   * live only in the control until its migration pushes them here (SPEC §8.1 "fetches them
   * once"). Once per wake: a user nobody created stays unknown in memory, and the push that
   * creates it brings the record. Only call joins fetch: they are socket-driven and limited
   * per client address (SPEC §3); and once the control says the migration is over, none does.
   */
  private async record(userId: string): Promise<Row | null> {
    const row = this.stored();
    if (row || controlMigrated) return row;
    this.fetching ??= controlOf(this.env)
      .recordForUser(userId)
      .then(
        ({ state, migrating }) => {
          if (state) this.adopt(state);
          if (!migrating) controlMigrated = true;
        },
        (error: unknown) => {
          // A failed fetch is asked again by the next join, not remembered for the whole wake.
          this.fetching = null;
          throw error;
        },
      );
    await this.fetching;
    return this.stored();
  }

  /** Stores a newer record; answers whether it was newer. */
  private adopt(state: UserState): boolean {
    const row = this.stored();
    if (row && state.version <= row.version) return false;
    this.write({ iota_id: state.iota_id, key_digest: state.digest, version: state.version });
    return true;
  }

  // ---- lookups for call rooms and hubs -------------------------------------------------

  /**
   * Checks a call member's credential and records the call for this socket, so a revocation
   * can reach it (per socket: a late leave of an old socket never erases the next one's
   * record). A user is in at most MAX_CALLS_PER_USER calls (SPEC §7 r2); a rejoin of a call
   * the user is in does not count twice.
   */
  async joinCall(userId: string, keyHash: string, callId: string, socketId: string): Promise<JoinVerdict> {
    const checked = (await this.record(userId))?.key_digest ?? null;
    const matches = await credentialMatches(keyHash, checked ?? NO_CREDENTIAL);
    // Read again after the wait: a revocation that landed during it decides.
    if (!checked) return "unknown_id";
    if (!matches || this.stored()?.key_digest !== checked) return "bad_credential";
    const limit = configOf(this.env).MAX_CALLS_PER_USER;
    if (this.callsBesides(callId) >= limit) {
      await this.forgetVanishedCalls(userId, callId);
      if (this.stored()?.key_digest !== checked) return "bad_credential";
      if (this.callsBesides(callId) >= limit) return "limit";
    }
    // The version the socket joined under: a revoking push names the version it revokes up
    // to, so it closes exactly the sockets that joined before it (see `applyRecord`).
    this.sql.exec(
      "INSERT OR IGNORE INTO call_sockets (call_id, socket_id, version) VALUES (?, ?, ?)",
      callId,
      socketId,
      this.stored()?.version ?? 0,
    );
    return "joined";
  }

  private callsBesides(callId: string): number {
    return new Set(this.callSockets("call_sockets", callId).map((row) => row.call_id)).size;
  }

  /**
   * A deploy or a crash can end a call socket without its close event, leaving its record
   * behind. Before refusing a join at the limit, ask each room whether the sockets it is
   * recorded for are still there, and forget those that are not.
   */
  private async forgetVanishedCalls(userId: string, callId: string): Promise<void> {
    const byCall = new Map<string, string[]>();
    for (const { call_id, socket_id } of this.callSockets("call_sockets", callId)) {
      byCall.set(call_id, [...(byCall.get(call_id) ?? []), socket_id]);
    }
    await Promise.all(
      [...byCall].map(async ([call, sockets]) => {
        const held = await this.env.CALL_ROOM.get(this.env.CALL_ROOM.idFromName(call)).heldSockets(userId, sockets);
        for (const socket of sockets) {
          if (!held.includes(socket)) this.sql.exec("DELETE FROM call_sockets WHERE call_id = ? AND socket_id = ?", call, socket);
        }
      }),
    );
  }

  leaveCall(callId: string, socketId: string): void {
    if (!this.stored()) return;
    this.sql.exec("DELETE FROM call_sockets WHERE call_id = ? AND socket_id = ?", callId, socketId);
  }

  /**
   * The Iota that owns the user (SPEC §5.3), for a hub routing to it. `askingIota` is the
   * hub that asks: when the answer is "unknown", it will remember that, so it is told when
   * the user is created.
   */
  async ownerOf(askingIota: string): Promise<Owner> {
    // Never fetched from the control: a lookup is frame-driven (an Iota may send thousands a
    // second to ids nobody created), so it must not reach the control. A user whose record
    // has not arrived yet (r1's, while the control migrates) is "unknown" for now, and the
    // push that brings the record tells the asking hub at once (`tellWatchers`).
    const row = this.stored();
    if (row?.key_digest) return row.iota_id;
    await this.watch(askingIota);
    return undefined;
  }

  private watchers(): Map<string, number> {
    if (!this.watching) {
      this.watching = new Map(
        this.hasTable("watchers")
          ? this.sql.exec<{ iota_id: string; until: number }>("SELECT iota_id, until FROM watchers").toArray().map((w) => [w.iota_id, w.until])
          : [],
      );
    }
    return this.watching;
  }

  /** Remembers a hub that now caches "unknown user"; written once per half of its memory. */
  private async watch(iotaId: string): Promise<void> {
    const watchers = this.watchers();
    const now = Date.now();
    const until = watchers.get(iotaId);
    if (until !== undefined && until - now > UNKNOWN_USER_TTL_MS / 2) return;
    if (until === undefined && watchers.size >= MAX_WATCHERS) return;
    const lapses = now + UNKNOWN_USER_TTL_MS;
    watchers.set(iotaId, lapses);
    this.sql.exec("CREATE TABLE IF NOT EXISTS watchers (iota_id TEXT PRIMARY KEY, until INTEGER NOT NULL)");
    this.sql.exec("INSERT INTO watchers (iota_id, until) VALUES (?, ?) ON CONFLICT (iota_id) DO UPDATE SET until = excluded.until", iotaId, lapses);
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(lapses);
  }

  /** Drops lapsed watchers; an object left with no record and no watcher keeps nothing at all. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const watchers = this.watchers();
    for (const [iotaId, until] of watchers) if (until <= now) watchers.delete(iotaId);
    if (watchers.size > 0) {
      this.sql.exec("DELETE FROM watchers WHERE until <= ?", now);
      await this.ctx.storage.setAlarm(Math.min(...watchers.values()));
      return;
    }
    this.dropWatchers();
    if (!this.stored()) await this.ctx.storage.deleteAll();
  }

  private dropWatchers(): void {
    this.watching = new Map();
    this.sql.exec("DROP TABLE IF EXISTS watchers");
  }

  // ---- pushes from the control ---------------------------------------------------------

  /**
   * Applies a record the control pushed. A revoking change moves the call sockets that
   * joined before it to `closing` in the same write, then closes them, even when a newer
   * record is here already: a revoking push that failed and is retried after a later
   * change (say, its Iota's removal) still owes those closes, and sockets that joined under
   * the later record are not its to close. A push that fails half-way is retried by the
   * control's outbox and finishes the closes.
   */
  async applyRecord(userId: string, state: UserState): Promise<void> {
    const wasKnown = Boolean(this.stored()?.key_digest);
    this.adopt(state);
    if (state.revoke && this.stored()) {
      this.sql.exec("INSERT OR IGNORE INTO closing SELECT call_id, socket_id FROM call_sockets WHERE version < ?", state.version);
      this.sql.exec("DELETE FROM call_sockets WHERE version < ?", state.version);
    }
    if (!wasKnown && this.stored()?.key_digest) await this.tellWatchers(userId);
    await this.closePending(userId);
  }

  private async closePending(userId: string): Promise<void> {
    const byCall = new Map<string, string[]>();
    for (const { call_id, socket_id } of this.callSockets("closing")) byCall.set(call_id, [...(byCall.get(call_id) ?? []), socket_id]);
    const results = await Promise.allSettled(
      [...byCall].map(async ([callId, sockets]) => {
        await this.env.CALL_ROOM.get(this.env.CALL_ROOM.idFromName(callId)).revokeMember(userId, sockets);
        for (const socket of sockets) this.sql.exec("DELETE FROM closing WHERE call_id = ? AND socket_id = ?", callId, socket);
      }),
    );
    // Every close is tried before the push answers, even when one fails (SPEC §8.2).
    const failed = results.find((result) => result.status === "rejected");
    if (failed) throw failed.reason;
  }

  /** The user exists now: hubs that remembered it as unknown forget that at once (SPEC §5.2 r2). */
  private async tellWatchers(userId: string): Promise<void> {
    const now = Date.now();
    const watchers = [...this.watchers()].filter(([, until]) => until > now).map(([iotaId]) => iotaId);
    this.dropWatchers();
    const results = await Promise.allSettled(watchers.map((iotaId) => this.env.HUB.get(this.env.HUB.idFromName(iotaId)).forgetUnknown(userId)));
    if (results.some((result) => result.status === "rejected")) log("internal_error", { user_id: userId, error: "forget_unknown_failed", level: "warn" });
  }
}
