/**
 * A hub's own copy of its records (SPEC §8.1 r2): the digest of its Iota's credential and
 * of each of its users' credentials, in the hub's SQLite storage, so the hub identifies its
 * peers without calling any other object. Only the control writes here (by push, or once by
 * a fetch); the tables are created by the first write, so a hub nobody pushed to keeps no
 * storage (SPEC §4 r2).
 */
import type { HubRecords, VersionedDigest } from "./records";

/** What applying records changed, so the hub can close what they revoked. */
export interface Applied {
  /** The Iota's credential changed or was removed. */
  iotaRevoked: boolean;
  /** The Iota was removed. */
  iotaRemoved: boolean;
  /** Users whose credential changed or who are no longer this Iota's. */
  usersRevoked: string[];
  /** Users who are this Iota's now and were not before. */
  usersAdded: string[];
}

const TABLES = ["record_iota", "record_users"] as const;

export class HubStore {
  private readonly sql: SqlStorage;
  /** Whether the tables exist; read once per wake. */
  private present: boolean | null = null;
  /** This Iota's users (records with a digest), loaded on first use. */
  private own: Set<string> | null = null;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  private tableNames(): Set<string> {
    return new Set(
      this.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('record_iota', 'record_users', 'users')")
        .toArray()
        .map((row) => row.name),
    );
  }

  /** Whether the control ever gave this hub records. */
  hasRecords(): boolean {
    if (this.present === null) {
      const names = this.tableNames();
      this.present = TABLES.every((name) => names.has(name));
    }
    return this.present;
  }

  /**
   * Whether this is a hub from before records lived in hubs (its r1 constructor made a
   * `users` table) that has none yet: such a hub fetches its records once (SPEC §8.1). A hub
   * with no storage at all is simply one nobody created, and asks nobody.
   */
  needsFetch(): boolean {
    return !this.hasRecords() && this.tableNames().has("users");
  }

  /** The r1 table is replaced by the fetched records. */
  dropLegacy(): void {
    this.sql.exec("DROP TABLE IF EXISTS users");
  }

  private ensureTables(): void {
    if (this.hasRecords()) return;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS record_iota (id INTEGER PRIMARY KEY CHECK (id = 1), key_digest TEXT, version INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS record_users (user_id TEXT PRIMARY KEY, key_digest TEXT, version INTEGER NOT NULL);
    `);
    this.present = true;
  }

  /** The Iota's record; undefined when the hub holds none. */
  iota(): VersionedDigest | undefined {
    if (!this.hasRecords()) return undefined;
    return this.sql
      .exec<{ key_digest: string | null; version: number }>("SELECT key_digest, version FROM record_iota WHERE id = 1")
      .toArray()
      .map((row) => ({ digest: row.key_digest, version: row.version }))[0];
  }

  /** The stored digest of a user's credential, or null when the user is not this Iota's. */
  userDigest(userId: string): string | null {
    if (!this.hasRecords()) return null;
    return (
      this.sql.exec<{ key_digest: string | null }>("SELECT key_digest FROM record_users WHERE user_id = ?", userId).toArray()[0]
        ?.key_digest ?? null
    );
  }

  private userVersion(userId: string): number {
    return (
      this.sql.exec<{ version: number }>("SELECT version FROM record_users WHERE user_id = ?", userId).toArray()[0]?.version ?? -1
    );
  }

  /** The users this Iota may serve (SPEC §5.2): every user with a record here. */
  users(): Set<string> {
    if (!this.own) {
      this.own = new Set(
        this.hasRecords()
          ? this.sql
              .exec<{ user_id: string }>("SELECT user_id FROM record_users WHERE key_digest IS NOT NULL")
              .toArray()
              .map((row) => row.user_id)
          : [],
      );
    }
    return this.own;
  }

  /**
   * Stores what is newer than what the hub holds, in one transaction, and says what changed.
   * A record that is not newer is ignored, so a late retry of an old push changes nothing.
   */
  apply(records: HubRecords): Applied {
    const applied: Applied = { iotaRevoked: false, iotaRemoved: false, usersRevoked: [], usersAdded: [] };
    const own = this.users();
    this.ensureTables();
    // Synchronous from here on: the runtime commits these writes together, and no push or
    // identification can run in between.
    const { iota } = records;
    const stored = this.iota();
    if (iota && iota.version > (stored?.version ?? -1)) {
      if (stored?.digest && stored.digest !== iota.digest) applied.iotaRevoked = true;
      if (stored?.digest && iota.digest === null) applied.iotaRemoved = true;
      this.sql.exec(
        "INSERT INTO record_iota (id, key_digest, version) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET key_digest = excluded.key_digest, version = excluded.version",
        iota.digest,
        iota.version,
      );
    }
    for (const user of records.users) {
      if (user.version <= this.userVersion(user.user_id)) continue;
      const before = this.userDigest(user.user_id);
      if (before && before !== user.digest) applied.usersRevoked.push(user.user_id);
      if (!before && user.digest) applied.usersAdded.push(user.user_id);
      this.sql.exec(
        "INSERT INTO record_users (user_id, key_digest, version) VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET key_digest = excluded.key_digest, version = excluded.version",
        user.user_id,
        user.digest,
        user.version,
      );
      if (user.digest) own.add(user.user_id);
      else own.delete(user.user_id);
    }
    return applied;
  }
}
