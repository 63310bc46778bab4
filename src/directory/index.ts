/**
 * The built-in directory (SPEC §8), spread so that no object is shared on a hot path:
 * - each hub holds its own records (`HubStore`) and identifies its peers from them;
 * - each user has a `UserRecord` object for call joins, leaves and owner lookups;
 * - one control object (`Directory`, the r1 class name, so r1 data stays where it is) holds
 *   the admin records and an outbox that pushes every change to the objects concerned.
 */
export { type AdminChange, Directory } from "./control";
export { type Applied, HubStore } from "./hub-store";
export { type HubRecords, type JoinVerdict, NO_CREDENTIAL, type Owner, type UserState } from "./records";
export { controlOf, userRecordOf } from "./stubs";
export { UserRecord } from "./user-record";
