/** How every object reaches the directory's objects: the one control, and one record per user. */
import type { Env } from "../env";
import type { Directory } from "./control";
import type { UserRecord } from "./user-record";

/** The control object (SPEC §8.1 r2): admin records, listing, the outbox. Never on a hot path. */
export function controlOf(env: Env): DurableObjectStub<Directory> {
  return env.BUILTIN_DIRECTORY.get(env.BUILTIN_DIRECTORY.idFromName("directory"));
}

/** The object that holds one user's record and call memberships. */
export function userRecordOf(env: Env, userId: string): DurableObjectStub<UserRecord> {
  return env.USER_RECORD.get(env.USER_RECORD.idFromName(userId));
}
