/** `omikron presence` and `omikron call show`: who is connected now (SPEC §8.2 r2). */
import { CallMembersSchema, PresenceSchema } from "../../admin/schemas.ts";
import { defineCommand } from "../command.ts";
import { CliError, EXIT } from "../exit.ts";
import { anyId, directoryId } from "./shared.ts";

export const presence = defineCommand({
  path: ["presence"],
  summary: "Show whether an Iota is connected, which of its users are online, and how many client sockets its hub holds.",
  args: [{ name: "iota_id", description: "the Iota's UUID" }],
  options: {},
  relay: "admin",
  async run({ args, admin, out }) {
    const id = directoryId("<iota_id>", args.iota_id);
    const { body } = await admin().request("GET", `/iotas/${id}/presence`, PresenceSchema);
    out.result(body, [
      `iota ${body.iota_id}: ${body.iota_online ? "online" : "offline"}`,
      `users online: ${body.users_online.length > 0 ? body.users_online.join(", ") : "(none)"}`,
      `client sockets: ${body.client_sockets}`,
    ]);
    return EXIT.ok;
  },
});

export const callShow = defineCommand({
  path: ["call", "show"],
  summary: "Show the members of a call and their call and user states. Exit 1 when nobody is in it.",
  args: [{ name: "call_id", description: "the call's UUID" }],
  options: {},
  relay: "admin",
  async run({ args, admin, out }) {
    const id = anyId("<call_id>", args.call_id);
    try {
      const { body } = await admin().request("GET", `/calls/${id}`, CallMembersSchema);
      const members = Object.entries(body.members);
      out.result(body, [
        `call ${body.call_id}: ${members.length} member${members.length === 1 ? "" : "s"}`,
        ...members.map(([user, state]) => `  ${user}  ${state.call_state}  ${state.user_state}`),
      ]);
      return EXIT.ok;
    } catch (error) {
      if (error instanceof CliError && error.error === "not_found") {
        throw new CliError(EXIT.failed, "not_found", `nobody is in call ${id}`);
      }
      throw error;
    }
  },
});
