/** `omikron iota add|show|rm|ls`: the directory's Iotas (SPEC §8.2). */
import { randomUUID } from "node:crypto";
import { IotaBody, IotaPageSchema, IotaRecordSchema } from "../../admin/schemas.ts";
import { defineCommand } from "../command.ts";
import { EXIT } from "../exit.ts";
import { LIST_OPTIONS, list } from "./listing.ts";
import { CREDENTIAL_OPTIONS, credential, directoryId, requestBody } from "./shared.ts";

const users = (ids: readonly string[]) => (ids.length > 0 ? ids.join(", ") : "(none)");

export const iotaAdd = defineCommand({
  path: ["iota", "add"],
  summary: "Create an Iota, or replace (re-key) an existing one.",
  details: [
    "Without <iota_id> a new UUID is drawn. Without --key-hash or --private-key a new private key",
    "is generated and printed once, with its private_key_hash: hand both to the Iota.",
    "Replacing an Iota's credential closes its socket (4003); its users stay connected.",
  ].join("\n"),
  args: [{ name: "iota_id", description: "the Iota's UUID (default: a new one)", optional: true }],
  options: CREDENTIAL_OPTIONS,
  relay: "admin",
  async run({ values, args, admin, out }) {
    const id = args.iota_id === undefined ? randomUUID() : directoryId("<iota_id>", args.iota_id);
    const key = await credential(values, true);
    const body = requestBody(IotaBody, { private_key_hash: key.private_key_hash }, { private_key_hash: "--key-hash" });
    const reply = await admin().request("PUT", `/iotas/${id}`, IotaRecordSchema, body);
    const created = reply.status === 201;
    out.result({ ...reply.body, created, ...(key.private_key ? key : {}) }, () => [
      `${created ? "created" : "replaced"} iota ${reply.body.iota_id}`,
      `users: ${users(reply.body.users)}`,
      ...(key.private_key
        ? [`private key (shown once, give it to the Iota): ${key.private_key}`, `private_key_hash: ${key.private_key_hash}`]
        : []),
    ]);
    return EXIT.ok;
  },
});

export const iotaShow = defineCommand({
  path: ["iota", "show"],
  summary: "Show an Iota and the users it owns.",
  args: [{ name: "iota_id", description: "the Iota's UUID" }],
  options: {},
  relay: "admin",
  async run({ args, admin, out }) {
    const id = directoryId("<iota_id>", args.iota_id);
    const { body } = await admin().request("GET", `/iotas/${id}`, IotaRecordSchema);
    out.result(body, [`iota ${body.iota_id}`, `users: ${users(body.users)}`]);
    return EXIT.ok;
  },
});

export const iotaRm = defineCommand({
  path: ["iota", "rm"],
  summary: "Remove an Iota: closes its socket and its users' client sockets (4003). Its users stay, owned by nobody.",
  args: [{ name: "iota_id", description: "the Iota's UUID" }],
  options: {},
  relay: "admin",
  async run({ args, admin, out }) {
    const id = directoryId("<iota_id>", args.iota_id);
    await admin().request("DELETE", `/iotas/${id}`, null);
    out.result({ iota_id: id, removed: true }, [`removed iota ${id}`]);
    return EXIT.ok;
  },
});

export const iotaLs = defineCommand({
  path: ["iota", "ls"],
  summary: "List Iotas in id order, with how many users each owns.",
  args: [],
  options: LIST_OPTIONS,
  relay: "admin",
  async run({ values, admin, out }) {
    const client = admin();
    const page = await list(values, async (query) => {
      const { body } = await client.request("GET", `/iotas?${query}`, IotaPageSchema);
      return { items: body.iotas, next_cursor: body.next_cursor };
    });
    out.result({ iotas: page.items, next_cursor: page.next_cursor }, () => [
      ...page.items.map((iota) => `${iota.iota_id}  ${iota.users} user${iota.users === 1 ? "" : "s"}`),
      ...(page.items.length === 0 ? ["(no iotas)"] : []),
      ...(page.next_cursor === null ? [] : [`more: --cursor ${page.next_cursor} (or --all)`]),
    ]);
    return EXIT.ok;
  },
});
