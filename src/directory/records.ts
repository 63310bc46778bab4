/**
 * What the control object pushes to the objects that hold records (SPEC §8.1 r2), and how a
 * target decides whether a push is news. Every record carries the version of the admin
 * change that wrote it (one counter for the deployment, kept by the control); a target keeps
 * the version beside the record and ignores a push that is not newer, so a retried old push
 * can never overtake a newer one.
 */

/** A digest no real credential produces, compared against when an id is unknown so that
 * unknown ids and wrong credentials take the same time. */
export const NO_CREDENTIAL = "0".repeat(64);

/** One record as a hub holds it: `digest` null means "not (or no longer) here". */
export interface VersionedDigest {
  digest: string | null;
  version: number;
}

export interface HubUserRecord extends VersionedDigest {
  user_id: string;
}

/** Records for one hub: its Iota's credential and some of its users' (all of them when seeding). */
export interface HubRecords {
  iota?: VersionedDigest;
  users: HubUserRecord[];
}

/** The record a `UserRecord` object holds for its user. */
export interface UserState extends VersionedDigest {
  iota_id: string | null;
  /** The change revokes the user's call sockets (re-key, move, removal). */
  revoke: boolean;
}

/**
 * The control's answer to a user record that holds nothing (SPEC §8.1: records from before
 * this revision are fetched once): the r1 record, if the control has one, and whether r1
 * records may still be on their way to user records (the migration is running, or a push to
 * a user record is still in the outbox).
 */
export interface FetchedUser {
  state: UserState | null;
  migrating: boolean;
}

/** What a hub asks of a user's record when routing to it (SPEC §5.3): the owner, null for none, undefined when unknown. */
export type Owner = string | null | undefined;

/** The answer of a call join at the user's record (SPEC §7). */
export type JoinVerdict = "joined" | "bad_credential" | "unknown_id" | "limit";
