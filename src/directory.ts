/**
 * The built-in directory (SPEC §8): one Durable Object with SQLite storage that knows Iotas,
 * users and their credentials, and that pushes every revocation to the hubs and call rooms
 * concerned before the admin call that caused it returns.
 */
import { DurableObject } from "cloudflare:workers";
import { credentialMatches, storedFormOf } from "./credentials";
import type { Env } from "./env";
import { log } from "./log";

export interface IotaRecord {
  iota_id: string;
  users: string[];
}

export interface UserRecord {
  user_id: string;
  iota_id: string | null;
}

export type PutResult<R> = { created: boolean; record: R };

/** A digest no real credential produces, compared against when an id is unknown so that
 * unknown ids and wrong credentials take the same time. */
const NO_CREDENTIAL = "0".repeat(64);

/** The deployment has one directory; every object reaches it by this name. */
export function directoryOf(env: Env): DurableObjectStub<Directory> {
  return env.BUILTIN_DIRECTORY.get(env.BUILTIN_DIRECTORY.idFromName("directory"));
}

export class Directory extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS iotas (iota_id TEXT PRIMARY KEY, key_digest TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY, iota_id TEXT, key_digest TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS users_by_iota ON users (iota_id);
      CREATE TABLE IF NOT EXISTS call_sockets (user_id TEXT NOT NULL, call_id TEXT NOT NULL, socket_id TEXT NOT NULL, PRIMARY KEY (user_id, call_id, socket_id));
    `);
  }

  // ---- records -------------------------------------------------------------------------

  private iotaRow(iotaId: string): { key_digest: string } | undefined {
    return this.sql
      .exec<{ key_digest: string }>("SELECT key_digest FROM iotas WHERE iota_id = ?", iotaId)
      .toArray()[0];
  }

  private userRow(userId: string): { iota_id: string | null; key_digest: string } | undefined {
    return this.sql
      .exec<{ iota_id: string | null; key_digest: string }>(
        "SELECT iota_id, key_digest FROM users WHERE user_id = ?",
        userId,
      )
      .toArray()[0];
  }

  private usersOf(iotaId: string): string[] {
    return this.sql
      .exec<{ user_id: string }>("SELECT user_id FROM users WHERE iota_id = ? ORDER BY user_id", iotaId)
      .toArray()
      .map((row) => row.user_id);
  }

  private callsOf(userId: string): string[] {
    return this.sql
      .exec<{ call_id: string }>("SELECT DISTINCT call_id FROM call_sockets WHERE user_id = ?", userId)
      .toArray()
      .map((row) => row.call_id);
  }

  getIota(iotaId: string): IotaRecord | null {
    return this.iotaRow(iotaId) ? { iota_id: iotaId, users: this.usersOf(iotaId) } : null;
  }

  getUser(userId: string): UserRecord | null {
    const row = this.userRow(userId);
    return row ? { user_id: userId, iota_id: row.iota_id } : null;
  }

  async putIota(iotaId: string, keyHash: string): Promise<PutResult<IotaRecord>> {
    const digest = await storedFormOf(keyHash);
    const previous = this.iotaRow(iotaId);
    this.sql.exec(
      "INSERT INTO iotas (iota_id, key_digest) VALUES (?, ?) ON CONFLICT (iota_id) DO UPDATE SET key_digest = excluded.key_digest",
      iotaId,
      digest,
    );
    if (previous && previous.key_digest !== digest) {
      await this.hub(iotaId).revoke({ iota: true, allClients: false, users: [] });
      log("revoked", { reason: "iota_rekeyed", iota_id: iotaId });
    }
    return { created: !previous, record: { iota_id: iotaId, users: this.usersOf(iotaId) } };
  }

  async deleteIota(iotaId: string): Promise<boolean> {
    if (!this.iotaRow(iotaId)) return false;
    this.sql.exec("DELETE FROM iotas WHERE iota_id = ?", iotaId);
    this.sql.exec("UPDATE users SET iota_id = NULL WHERE iota_id = ?", iotaId);
    await this.hub(iotaId).revoke({ iota: true, allClients: true, users: [] });
    log("revoked", { reason: "iota_removed", iota_id: iotaId });
    return true;
  }

  /** Answers null when the named Iota does not exist. */
  async putUser(userId: string, iotaId: string, keyHash: string): Promise<PutResult<UserRecord> | null> {
    const digest = await storedFormOf(keyHash);
    // Checked after the wait: a DELETE of the Iota may have run during it, and a user must
    // never be written under an Iota that no longer exists.
    if (!this.iotaRow(iotaId)) return null;
    const previous = this.userRow(userId);
    this.sql.exec(
      "INSERT INTO users (user_id, iota_id, key_digest) VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET iota_id = excluded.iota_id, key_digest = excluded.key_digest",
      userId,
      iotaId,
      digest,
    );
    if (previous && (previous.key_digest !== digest || previous.iota_id !== iotaId)) {
      await this.revokeUser(userId, previous.iota_id);
      log("revoked", { reason: previous.iota_id !== iotaId ? "user_moved" : "user_rekeyed", user_id: userId });
    }
    return { created: !previous, record: { user_id: userId, iota_id: iotaId } };
  }

  async deleteUser(userId: string): Promise<boolean> {
    const previous = this.userRow(userId);
    if (!previous) return false;
    this.sql.exec("DELETE FROM users WHERE user_id = ?", userId);
    await this.revokeUser(userId, previous.iota_id);
    this.sql.exec("DELETE FROM call_sockets WHERE user_id = ?", userId);
    log("revoked", { reason: "user_removed", user_id: userId });
    return true;
  }

  // ---- revocation ----------------------------------------------------------------------

  private hub(iotaId: string) {
    return this.env.HUB.get(this.env.HUB.idFromName(iotaId));
  }

  /** Closes the user's client sockets on its (former) hub and its call sockets, all at once. */
  private async revokeUser(userId: string, iotaId: string | null): Promise<void> {
    const closes: Promise<unknown>[] = this.callsOf(userId).map((callId) =>
      this.env.CALL_ROOM.get(this.env.CALL_ROOM.idFromName(callId)).revokeMember(userId),
    );
    if (iotaId) closes.push(this.hub(iotaId).revoke({ iota: false, allClients: false, users: [userId] }));
    // Every close is awaited before the admin reply, even when one of them fails (SPEC §8.2).
    const failed = (await Promise.allSettled(closes)).find((result) => result.status === "rejected");
    if (failed) throw failed.reason;
  }

  // ---- lookups for hubs and call rooms -------------------------------------------------

  /**
   * Checks an Iota's identification. `keyHash` null skips the credential (IOTA_AUTH=off) but
   * the Iota must still be registered. Answers the Iota's users, or null when refused.
   */
  async authenticateIota(iotaId: string, keyHash: string | null): Promise<string[] | null> {
    const checked = this.iotaRow(iotaId)?.key_digest;
    if (keyHash !== null && !(await credentialMatches(keyHash, checked ?? NO_CREDENTIAL))) return null;
    // Read again after the wait: a re-key or removal that landed during it decides (SPEC §8.1).
    const row = this.iotaRow(iotaId);
    if (!row || (keyHash !== null && row.key_digest !== checked)) return null;
    return this.usersOf(iotaId);
  }

  /** Checks a user's credential; answers the owning Iota (null if it was removed), or undefined when refused. */
  async authenticateUser(userId: string, keyHash: string): Promise<{ iotaId: string | null } | undefined> {
    const checked = this.userRow(userId)?.key_digest;
    const matches = await credentialMatches(keyHash, checked ?? NO_CREDENTIAL);
    // Read again after the wait: a revoked credential must not pass, nor an old owner be named.
    const row = this.userRow(userId);
    return matches && row && row.key_digest === checked ? { iotaId: row.iota_id } : undefined;
  }

  /**
   * Checks a call member's credential and records the call, so a revocation can reach it.
   * The record is per socket: a socket leaving never erases the record of the same user's
   * next socket, whatever order the two messages arrive in.
   */
  async joinCall(userId: string, keyHash: string, callId: string, socketId: string): Promise<boolean> {
    if (!(await this.authenticateUser(userId, keyHash))) return false;
    this.sql.exec(
      "INSERT OR IGNORE INTO call_sockets (user_id, call_id, socket_id) VALUES (?, ?, ?)",
      userId,
      callId,
      socketId,
    );
    return true;
  }

  leaveCall(userId: string, callId: string, socketId: string): void {
    this.sql.exec(
      "DELETE FROM call_sockets WHERE user_id = ? AND call_id = ? AND socket_id = ?",
      userId,
      callId,
      socketId,
    );
  }

  /** The Iota that owns a user: null for a user with no Iota, undefined for an unknown user. */
  ownerOf(userId: string): string | null | undefined {
    const row = this.userRow(userId);
    return row ? row.iota_id : undefined;
  }
}
