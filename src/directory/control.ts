/**
 * The control object (SPEC §8.1 r2, §8.2): the one `Directory` object of the deployment
 * (class name kept from r1, so r1 records stay where they are) holds the admin records, the
 * listing, and a durable outbox. It is never on the path of an identification, a relay or a
 * call join: those read records the control pushed to the hubs and user records.
 *
 * Every admin change and the pushes it requires are written in one synchronous block (one
 * storage transaction), pushed before the reply, and retried by the alarm with backoff until
 * applied. Each record carries the version of the change that wrote it, so a target ignores
 * a push that is not newer than what it holds.
 */
import { DurableObject } from "cloudflare:workers";
import { storedFormOf } from "../credentials";
import type { Env } from "../env";
import { log } from "../log";
import type { FetchedUser, HubRecords, HubUserRecord, UserState, VersionedDigest } from "./records";
import { userRecordOf } from "./stubs";

export interface IotaRecord {
  iota_id: string;
  users: string[];
}

export interface UserSummary {
  user_id: string;
  iota_id: string | null;
}

export interface IotaSummary {
  iota_id: string;
  users: number;
}

/** `retryAfter` is null when every push was applied before the reply, else seconds to wait. */
export interface AdminChange {
  retryAfter: number | null;
}

export interface PutResult<R> extends AdminChange {
  created: boolean;
  record: R;
}

/** One page in id order; `next` is the last id of the page when more follow. */
export interface Listing<T> {
  items: T[];
  next: string | null;
}

type Kind = "hub" | "user";
type Target = readonly [Kind, string];

type OutboxRow = {
  seq: number;
  kind: Kind;
  target: string;
  payload: string;
  attempts: number;
};

/** How long an admin reply waits for its pushes before answering 503 propagation_pending. */
const PROPAGATION_WAIT_MS = 5_000;
/** Pushes in flight at once, so a change touching thousands of users does not open thousands of calls. */
const PUSH_CONCURRENCY = 32;
/** Users per hub push: one outbox row stays far below SQLite's row size limit. */
const USERS_PER_PUSH = 500;
/** Rows the alarm pushes per run; it runs again at once while more are due. */
const ALARM_BATCH = 256;
/** r1 records queued per alarm run while migrating. */
const MIGRATE_IOTAS = 20;
const MIGRATE_USERS = 500;

/** Retry delay after the n-th failed attempt: 1 s doubling to at most 60 s. */
const backoff = (attempts: number) => Math.min(1_000 * 2 ** (attempts - 1), 60_000);

export class Directory extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    // The r1 schema first, so an r1 object and a new one upgrade the same way.
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS iotas (iota_id TEXT PRIMARY KEY, key_digest TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY, iota_id TEXT, key_digest TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `);
    if (this.meta("schema") !== "2") void ctx.blockConcurrencyWhile(() => this.upgrade());
  }

  // ---- schema and migration ------------------------------------------------------------

  private meta(key: string): string | undefined {
    return this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value;
  }

  private setMeta(key: string, value: string): void {
    this.sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value);
  }

  private hasColumn(table: string, column: string): boolean {
    return this.sql.exec("SELECT 1 FROM pragma_table_info(?) WHERE name = ?", table, column).toArray().length > 0;
  }

  /**
   * From r1: records gain a version (0 for r1 records, older than any change made since), call
   * memberships move to the user records (r1's died with the deploy that brought this code,
   * which closed every socket), and every r1 record is queued for the objects that now hold
   * records, a batch per alarm run.
   */
  private async upgrade(): Promise<void> {
    this.ctx.storage.transactionSync(() => {
      for (const table of ["iotas", "users"]) {
        if (!this.hasColumn(table, "version")) this.sql.exec(`ALTER TABLE ${table} ADD COLUMN version INTEGER NOT NULL DEFAULT 0`);
      }
      this.sql.exec(`
        DROP TABLE IF EXISTS call_sockets;
        DROP INDEX IF EXISTS users_by_iota;
        CREATE INDEX IF NOT EXISTS users_by_iota_user ON users (iota_id, user_id);
        CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, target TEXT NOT NULL, payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, due INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS outbox_due ON outbox (due);
        CREATE INDEX IF NOT EXISTS outbox_target ON outbox (kind, target);
      `);
      if (this.meta("version") === undefined) this.setMeta("version", "0");
      const hasRecords = this.sql.exec("SELECT 1 FROM iotas UNION ALL SELECT 1 FROM users LIMIT 1").toArray().length > 0;
      if (hasRecords) this.setMeta("migrate", "iotas:");
      this.setMeta("schema", "2");
    });
    if (this.meta("migrate")) await this.ctx.storage.setAlarm(Date.now());
  }

  /** Queues the next batch of r1 records; answers whether more remain. */
  private migrateStep(): boolean {
    const state = this.meta("migrate");
    if (!state) return false;
    const [phase, cursor = ""] = state.split(/:(.*)/s);
    if (phase === "iotas") {
      const iotas = this.sql
        .exec<{ iota_id: string; key_digest: string; version: number }>(
          "SELECT iota_id, key_digest, version FROM iotas WHERE iota_id > ? ORDER BY iota_id LIMIT ?",
          cursor,
          MIGRATE_IOTAS,
        )
        .toArray();
      for (const iota of iotas) {
        const users = this.sql
          .exec<{ user_id: string; key_digest: string; version: number }>("SELECT user_id, key_digest, version FROM users WHERE iota_id = ?", iota.iota_id)
          .toArray()
          .map((user) => ({ user_id: user.user_id, digest: user.key_digest, version: user.version }));
        this.enqueueHub(iota.iota_id, { digest: iota.key_digest, version: iota.version }, users, Date.now());
      }
      this.setMeta("migrate", iotas.length < MIGRATE_IOTAS ? "users:" : `iotas:${iotas.at(-1)?.iota_id}`);
      return true;
    }
    const users = this.sql
      .exec<{ user_id: string; iota_id: string | null; key_digest: string; version: number }>(
        "SELECT user_id, iota_id, key_digest, version FROM users WHERE user_id > ? ORDER BY user_id LIMIT ?",
        cursor,
        MIGRATE_USERS,
      )
      .toArray();
    for (const user of users) {
      this.enqueueUser(user.user_id, { iota_id: user.iota_id, digest: user.key_digest, version: user.version, revoke: false }, Date.now());
    }
    if (users.length < MIGRATE_USERS) {
      this.sql.exec("DELETE FROM meta WHERE key = 'migrate'");
      log("directory_migrated");
      return false;
    }
    this.setMeta("migrate", `users:${users.at(-1)?.user_id}`);
    return true;
  }

  // ---- records -------------------------------------------------------------------------

  private iotaRow(iotaId: string): { key_digest: string } | undefined {
    return this.sql.exec<{ key_digest: string }>("SELECT key_digest FROM iotas WHERE iota_id = ?", iotaId).toArray()[0];
  }

  private userRow(userId: string): { iota_id: string | null; key_digest: string; version: number } | undefined {
    return this.sql
      .exec<{ iota_id: string | null; key_digest: string; version: number }>("SELECT iota_id, key_digest, version FROM users WHERE user_id = ?", userId)
      .toArray()[0];
  }

  private usersOf(iotaId: string): string[] {
    return this.sql
      .exec<{ user_id: string }>("SELECT user_id FROM users WHERE iota_id = ? ORDER BY user_id", iotaId)
      .toArray()
      .map((row) => row.user_id);
  }

  /** The version of a new change: one counter for the deployment, so every push is ordered. */
  private nextVersion(): number {
    const version = Number(this.meta("version") ?? "0") + 1;
    this.setMeta("version", String(version));
    return version;
  }

  getIota(iotaId: string): IotaRecord | null {
    return this.iotaRow(iotaId) ? { iota_id: iotaId, users: this.usersOf(iotaId) } : null;
  }

  getUser(userId: string): UserSummary | null {
    const row = this.userRow(userId);
    return row ? { user_id: userId, iota_id: row.iota_id } : null;
  }

  async putIota(iotaId: string, keyHash: string): Promise<PutResult<IotaRecord>> {
    const digest = await storedFormOf(keyHash);
    const previous = this.iotaRow(iotaId);
    if (previous?.key_digest !== digest) {
      this.ctx.storage.transactionSync(() => {
        const version = this.nextVersion();
        this.sql.exec(
          "INSERT INTO iotas (iota_id, key_digest, version) VALUES (?, ?, ?) ON CONFLICT (iota_id) DO UPDATE SET key_digest = excluded.key_digest, version = excluded.version",
          iotaId,
          digest,
          version,
        );
        this.enqueueHub(iotaId, { digest, version }, []);
      });
    }
    const retryAfter = await this.propagate([["hub", iotaId]]);
    if (previous && previous.key_digest !== digest) log("revoked", { reason: "iota_rekeyed", iota_id: iotaId });
    return { created: !previous, record: { iota_id: iotaId, users: this.usersOf(iotaId) }, retryAfter };
  }

  async deleteIota(iotaId: string): Promise<AdminChange | null> {
    if (!this.iotaRow(iotaId)) return null;
    const users = this.sql
      .exec<{ user_id: string; key_digest: string }>("SELECT user_id, key_digest FROM users WHERE iota_id = ?", iotaId)
      .toArray();
    this.ctx.storage.transactionSync(() => {
      const version = this.nextVersion();
      this.sql.exec("DELETE FROM iotas WHERE iota_id = ?", iotaId);
      this.sql.exec("UPDATE users SET iota_id = NULL, version = ? WHERE iota_id = ?", version, iotaId);
      this.enqueueHub(
        iotaId,
        { digest: null, version },
        users.map((user) => ({ user_id: user.user_id, digest: null, version })),
      );
      // The users stay, owned by nobody; their call sockets stay too (SPEC §8.2).
      for (const user of users) this.enqueueUser(user.user_id, { iota_id: null, digest: user.key_digest, version, revoke: false });
    });
    const retryAfter = await this.propagate([["hub", iotaId], ...users.map((user) => ["user", user.user_id] as const)]);
    log("revoked", { reason: "iota_removed", iota_id: iotaId });
    return { retryAfter };
  }

  /** Answers null when the named Iota does not exist. */
  async putUser(userId: string, iotaId: string, keyHash: string): Promise<PutResult<UserSummary> | null> {
    const digest = await storedFormOf(keyHash);
    // Checked after the wait: a DELETE of the Iota may have run during it, and a user must
    // never be written under an Iota that no longer exists.
    if (!this.iotaRow(iotaId)) return null;
    const previous = this.userRow(userId);
    const changed = !previous || previous.key_digest !== digest || previous.iota_id !== iotaId;
    if (changed) {
      this.ctx.storage.transactionSync(() => {
        const version = this.nextVersion();
        this.sql.exec(
          "INSERT INTO users (user_id, iota_id, key_digest, version) VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET iota_id = excluded.iota_id, key_digest = excluded.key_digest, version = excluded.version",
          userId,
          iotaId,
          digest,
          version,
        );
        if (previous?.iota_id && previous.iota_id !== iotaId) this.enqueueHub(previous.iota_id, undefined, [{ user_id: userId, digest: null, version }]);
        this.enqueueHub(iotaId, undefined, [{ user_id: userId, digest, version }]);
        this.enqueueUser(userId, { iota_id: iotaId, digest, version, revoke: previous !== undefined });
      });
    }
    // Also when nothing changed: a repeated request pushes what an earlier one left pending.
    const targets: Target[] = [["user", userId], ["hub", iotaId]];
    if (previous?.iota_id && previous.iota_id !== iotaId) targets.push(["hub", previous.iota_id]);
    const retryAfter = await this.propagate(targets);
    if (previous && changed) log("revoked", { reason: previous.iota_id !== iotaId ? "user_moved" : "user_rekeyed", user_id: userId });
    return { created: !previous, record: { user_id: userId, iota_id: iotaId }, retryAfter };
  }

  async deleteUser(userId: string): Promise<AdminChange | null> {
    const previous = this.userRow(userId);
    if (!previous) return null;
    this.ctx.storage.transactionSync(() => {
      const version = this.nextVersion();
      this.sql.exec("DELETE FROM users WHERE user_id = ?", userId);
      if (previous.iota_id) this.enqueueHub(previous.iota_id, undefined, [{ user_id: userId, digest: null, version }]);
      this.enqueueUser(userId, { iota_id: null, digest: null, version, revoke: true });
    });
    const targets: Target[] = [["user", userId]];
    if (previous.iota_id) targets.push(["hub", previous.iota_id]);
    const retryAfter = await this.propagate(targets);
    log("revoked", { reason: "user_removed", user_id: userId });
    return { retryAfter };
  }

  // ---- listing (SPEC §8.2 r2) ----------------------------------------------------------

  listIotas(limit: number, after: string | null): Listing<IotaSummary> {
    const rows = this.sql
      .exec<{ iota_id: string; users: number }>(
        "SELECT iota_id, (SELECT COUNT(*) FROM users WHERE users.iota_id = iotas.iota_id) AS users FROM iotas WHERE iota_id > ? ORDER BY iota_id LIMIT ?",
        after ?? "",
        limit + 1,
      )
      .toArray();
    return page(rows, limit, (row) => row.iota_id);
  }

  listUsers(limit: number, after: string | null, iotaId: string | null): Listing<UserSummary> {
    const rows = iotaId
      ? this.sql
          .exec<{ user_id: string; iota_id: string | null }>(
            "SELECT user_id, iota_id FROM users WHERE iota_id = ? AND user_id > ? ORDER BY user_id LIMIT ?",
            iotaId,
            after ?? "",
            limit + 1,
          )
          .toArray()
      : this.sql
          .exec<{ user_id: string; iota_id: string | null }>("SELECT user_id, iota_id FROM users WHERE user_id > ? ORDER BY user_id LIMIT ?", after ?? "", limit + 1)
          .toArray();
    return page(rows, limit, (row) => row.user_id);
  }

  // ---- records fetched once (SPEC §8.1: "a hub that has no records yet fetches them once") --

  /** Everything a hub holds: its Iota's record and all its users'. */
  recordsForHub(iotaId: string): HubRecords {
    const iota = this.sql.exec<{ key_digest: string; version: number }>("SELECT key_digest, version FROM iotas WHERE iota_id = ?", iotaId).toArray()[0];
    if (!iota) return { users: [] };
    const users = this.sql
      .exec<{ user_id: string; key_digest: string; version: number }>("SELECT user_id, key_digest, version FROM users WHERE iota_id = ?", iotaId)
      .toArray()
      .map((user) => ({ user_id: user.user_id, digest: user.key_digest, version: user.version }));
    return { iota: { digest: iota.key_digest, version: iota.version }, users };
  }

  recordForUser(userId: string): FetchedUser {
    const row = this.userRow(userId);
    const migrating = this.meta("migrate") !== undefined || this.sql.exec("SELECT 1 FROM outbox WHERE kind = 'user' LIMIT 1").toArray().length > 0;
    return { state: row ? { iota_id: row.iota_id, digest: row.key_digest, version: row.version, revoke: false } : null, migrating };
  }

  // ---- the outbox ----------------------------------------------------------------------

  /** Queues records for a hub, split so no row grows large; the Iota's record rides in the first. */
  private enqueueHub(iotaId: string, iota: VersionedDigest | undefined, users: HubUserRecord[], due?: number): void {
    let first = true;
    for (let start = 0; first || start < users.length; start += USERS_PER_PUSH) {
      const push: HubRecords = { users: users.slice(start, start + USERS_PER_PUSH) };
      if (first && iota) push.iota = iota;
      this.enqueue("hub", iotaId, push, due);
      first = false;
    }
  }

  private enqueueUser(userId: string, state: UserState, due?: number): void {
    this.enqueue("user", userId, state, due);
  }

  /**
   * A change's row is due once the reply's own attempt has had its time, so the alarm picks
   * up what that attempt left; migrated rows, which no reply pushes, are due at once.
   */
  private enqueue(kind: Kind, target: string, payload: HubRecords | UserState, due = Date.now() + PROPAGATION_WAIT_MS): void {
    this.sql.exec(
      "INSERT INTO outbox (kind, target, payload, due) VALUES (?, ?, ?, ?)",
      kind,
      target,
      JSON.stringify(payload),
      due,
    );
  }

  /**
   * Pushes every pending row for these targets (this change's and any an earlier change left)
   * and answers null when all were applied in time, else the seconds after which to retry.
   */
  private async propagate(targets: Target[]): Promise<number | null> {
    const rows: OutboxRow[] = [];
    for (const [kind, target] of targets) {
      rows.push(
        ...this.sql
          .exec<OutboxRow>("SELECT seq, kind, target, payload, attempts FROM outbox WHERE kind = ? AND target = ? ORDER BY seq", kind, target)
          .toArray(),
      );
    }
    if (rows.length === 0) return null;
    await this.scheduleAlarm();
    if (await this.deliver(rows, Date.now() + PROPAGATION_WAIT_MS)) {
      // Nothing left to retry: the alarm that backed up this attempt need not wake the object.
      if (!this.meta("migrate") && this.sql.exec("SELECT 1 FROM outbox LIMIT 1").toArray().length === 0) await this.ctx.storage.deleteAlarm();
      return null;
    }
    const due = this.sql.exec<{ due: number | null }>("SELECT MIN(due) AS due FROM outbox").one().due ?? Date.now();
    return Math.max(1, Math.ceil((due - Date.now()) / 1_000));
  }

  /** Pushes rows with bounded concurrency; answers whether all were applied before the deadline. */
  private async deliver(rows: OutboxRow[], deadline: number): Promise<boolean> {
    let next = 0;
    let failed = false;
    const worker = async () => {
      for (let row = rows[next++]; row; row = rows[next++]) if (!(await this.deliverOne(row))) failed = true;
    };
    const all = Promise.all(Array.from({ length: Math.min(PUSH_CONCURRENCY, rows.length) }, worker));
    let timer: ReturnType<typeof setTimeout> | null = null;
    // The timer only bounds this request's wait; unfinished pushes go on, and the alarm backs them up.
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
    });
    try {
      return await Promise.race([all.then(() => !failed), timeout]);
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
  }

  private async deliverOne(row: OutboxRow): Promise<boolean> {
    const idField = row.kind === "hub" ? { iota_id: row.target } : { user_id: row.target };
    try {
      if (row.kind === "hub") {
        const hub = this.env.HUB.get(this.env.HUB.idFromName(row.target));
        await hub.applyRecords(row.target, JSON.parse(row.payload) as HubRecords);
      } else {
        await userRecordOf(this.env, row.target).applyRecord(row.target, JSON.parse(row.payload) as UserState);
      }
      this.sql.exec("DELETE FROM outbox WHERE seq = ?", row.seq);
      return true;
    } catch (error) {
      const attempts = row.attempts + 1;
      this.sql.exec("UPDATE outbox SET attempts = ?, due = ? WHERE seq = ?", attempts, Date.now() + backoff(attempts), row.seq);
      log("propagation_failed", { ...idField, error: error instanceof Error ? error.name : "unknown", level: "warn" });
      await this.scheduleAlarm();
      return false;
    }
  }

  /** The alarm wakes when the earliest row is due, or at once while r1 records are still queued. */
  private async scheduleAlarm(): Promise<void> {
    const due = this.meta("migrate") ? Date.now() : this.sql.exec<{ due: number | null }>("SELECT MIN(due) AS due FROM outbox").one().due;
    if (due === null) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > due) await this.ctx.storage.setAlarm(Math.max(due, Date.now()));
  }

  override async alarm(): Promise<void> {
    this.migrateStep();
    const rows = this.sql
      .exec<OutboxRow>("SELECT seq, kind, target, payload, attempts FROM outbox WHERE due <= ? ORDER BY seq LIMIT ?", Date.now(), ALARM_BATCH)
      .toArray();
    // A row that fails is given its next due time by deliverOne; the alarm never waits it out.
    await this.deliver(rows, Date.now() + 25_000);
    await this.scheduleAlarm();
  }
}

function page<T>(rows: T[], limit: number, idOf: (row: T) => string): Listing<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, next: rows.length > limit && last ? idOf(last) : null };
}
