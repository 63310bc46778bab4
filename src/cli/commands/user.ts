/** `omikron user add|show|rm|ls`: the directory's users (SPEC §8.2). */
import { randomUUID } from "node:crypto";
import { UserBody, UserPageSchema, UserRecordSchema } from "../../admin/schemas.ts";
import { defineCommand } from "../command.ts";
import { EXIT, usageError } from "../exit.ts";
import { LIST_OPTIONS, list } from "./listing.ts";
import { CREDENTIAL_OPTIONS, credential, directoryId, requestBody } from "./shared.ts";

const owner = (iotaId: string | null) => iotaId ?? "(none: its Iota was removed)";

export const userAdd = defineCommand({
  path: ["user", "add"],
  summary: "Create a user of an Iota, or replace (re-key or move) an existing one.",
  details: [
    "Without <user_id> a new UUID is drawn. Without --key-hash or --private-key a new private key",
    "is generated and printed once, with its private_key_hash: hand both to the user's clients.",
    "Re-keying a user or moving it to another Iota closes its client and call sockets (4003).",
  ].join("\n"),
  args: [{ name: "user_id", description: "the user's UUID (default: a new one)", optional: true }],
  options: {
    iota: { type: "string", value: "<iota_id>", description: "the Iota that owns the user (required)" },
    ...CREDENTIAL_OPTIONS,
  },
  relay: "admin",
  async run({ values, args, admin, out }) {
    const id = args.user_id === undefined ? randomUUID() : directoryId("<user_id>", args.user_id);
    if (values.iota === undefined) throw usageError("--iota is required");
    const key = await credential(values, true);
    const body = requestBody(
      UserBody,
      { iota_id: values.iota, private_key_hash: key.private_key_hash },
      { iota_id: "--iota", private_key_hash: "--key-hash" },
    );
    const reply = await admin().request("PUT", `/users/${id}`, UserRecordSchema, body);
    const created = reply.status === 201;
    out.result({ ...reply.body, created, ...(key.private_key ? key : {}) }, () => [
      `${created ? "created" : "replaced"} user ${reply.body.user_id} of iota ${owner(reply.body.iota_id)}`,
      ...(key.private_key
        ? [`private key (shown once, give it to the user): ${key.private_key}`, `private_key_hash: ${key.private_key_hash}`]
        : []),
    ]);
    return EXIT.ok;
  },
});

export const userShow = defineCommand({
  path: ["user", "show"],
  summary: "Show a user and the Iota that owns it.",
  args: [{ name: "user_id", description: "the user's UUID" }],
  options: {},
  relay: "admin",
  async run({ args, admin, out }) {
    const id = directoryId("<user_id>", args.user_id);
    const { body } = await admin().request("GET", `/users/${id}`, UserRecordSchema);
    out.result(body, [`user ${body.user_id}`, `iota: ${owner(body.iota_id)}`]);
    return EXIT.ok;
  },
});

export const userRm = defineCommand({
  path: ["user", "rm"],
  summary: "Remove a user: closes its client and call sockets (4003).",
  args: [{ name: "user_id", description: "the user's UUID" }],
  options: {},
  relay: "admin",
  async run({ args, admin, out }) {
    const id = directoryId("<user_id>", args.user_id);
    await admin().request("DELETE", `/users/${id}`, null);
    out.result({ user_id: id, removed: true }, [`removed user ${id}`]);
    return EXIT.ok;
  },
});

export const userLs = defineCommand({
  path: ["user", "ls"],
  summary: "List users in id order, with the Iota that owns each.",
  args: [],
  options: {
    iota: { type: "string", value: "<iota_id>", description: "only the users of this Iota" },
    ...LIST_OPTIONS,
  },
  relay: "admin",
  async run({ values, admin, out }) {
    const iotaId = values.iota === undefined ? undefined : directoryId("--iota", values.iota);
    const client = admin();
    const page = await list(values, async (query) => {
      if (iotaId !== undefined) query.set("iota_id", iotaId);
      const { body } = await client.request("GET", `/users?${query}`, UserPageSchema);
      return { items: body.users, next_cursor: body.next_cursor };
    });
    out.result({ users: page.items, next_cursor: page.next_cursor }, () => [
      ...page.items.map((user) => `${user.user_id}  iota ${owner(user.iota_id)}`),
      ...(page.items.length === 0 ? ["(no users)"] : []),
      ...(page.next_cursor === null ? [] : [`more: --cursor ${page.next_cursor} (or --all)`]),
    ]);
    return EXIT.ok;
  },
});
