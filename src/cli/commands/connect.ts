/**
 * `omikron connect iota|client|call`: an interactive peer session on the peer library. It
 * identifies, prints every frame as it arrives, and sends what you type, until you quit, the
 * input ends, or the relay closes the socket. It does not reconnect: a debugging session
 * should show the close code, not hide it.
 */
import {
  type CallState,
  ConnectionClosedError,
  type Frame,
  type OutboundFrame,
  type Peer,
  RefusedError,
  connectClient,
  connectIota,
  joinCall,
} from "../../peer/index.ts";
import { CallStateSchema } from "../../peer/schemas.ts";
import { type Context, type Options, defineCommand } from "../command.ts";
import { CliError, EXIT, usageError } from "../exit.ts";
import { describeFrame } from "../frames.ts";
import { anyId, CREDENTIAL_OPTIONS, credential, directoryId } from "./shared.ts";

/** Every push the peer library emits as its own event (SPEC §4, §7). */
const PUSHES = ["iota_connected", "iota_disconnected", "client_connected", "client_disconnected", "client_changed"] as const;

const INPUT_HELP = [
  "Type a frame and press Enter:",
  "  {\"type\":\"...\", ...}              sent as is (a fresh id is added when it has none)",
  "  [@<receiver_id>] <type> [<data>]  e.g. `@<user_id> message {\"text\":\"hi\"}`; <data> is a JSON object",
  "  /ping                             a JSON ping (SPEC §6)",
  "  /quit                             close (1000) and exit; so does the end of input or Ctrl-C",
].join("\n");

const DETAILS = [
  INPUT_HELP,
  "",
  "Frames print as `<- type  {json}` (received) and `-> type  {json}` (sent); with --json, one",
  '{"direction":"in"|"out"|"closed", ...} object per line. At the end of input the session first',
  "waits until the relay has answered everything sent before (a ping round trip), then closes.",
  "Exit: 0 closed by you or with 1000, 1 refused or closed by the relay with another code,",
  "3 the relay could not be reached.",
].join("\n");

type Line = { frame: OutboundFrame } | { command: "ping" | "quit" | "help" } | { error: string };

/** What a typed line asks for. */
export function parseLine(line: string): Line | null {
  const text = line.trim();
  if (text === "") return null;
  if (text === "/ping") return { command: "ping" };
  if (text === "/quit" || text === "/exit") return { command: "quit" };
  if (text === "/help") return { command: "help" };
  if (text.startsWith("/")) return { error: `unknown command ${text.split(/\s/)[0]}; /help lists them` };
  if (text.startsWith("{")) {
    const value = parseJson(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) return { error: "not a JSON object" };
    if (typeof (value as { type?: unknown }).type !== "string") return { error: 'a frame needs a string "type"' };
    return { frame: value as OutboundFrame };
  }
  const match = /^(?:@(\S+)\s+)?(\S+)(?:\s+(.*))?$/.exec(text);
  if (!match) return { error: "expected [@<receiver_id>] <type> [<data>]" };
  const [, receiver, type = "", rest] = match;
  const frame: OutboundFrame = { type };
  if (receiver !== undefined) frame.receiver_id = receiver;
  if (rest !== undefined) {
    const data = parseJson(rest);
    if (typeof data !== "object" || data === null || Array.isArray(data)) return { error: "<data> must be a JSON object" };
    frame.data = data as Record<string, unknown>;
  }
  return { frame };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const CALL_OPTIONS = {
  ...CREDENTIAL_OPTIONS,
  "call-state": { type: "string", value: "<state>", description: "active (default), streaming, muted or deafed" },
  "user-state": { type: "string", value: "<state>", description: "1-64 characters (default online)" },
} as const satisfies Options;

export const connectIotaCommand = defineCommand({
  path: ["connect", "iota"],
  summary: "Connect as an Iota: identify, print every frame, send what you type.",
  details: DETAILS,
  args: [{ name: "iota_id", description: "the Iota's UUID" }],
  options: {
    users: { type: "string", value: "<ids>", description: "the users it hosts, comma-separated (default: none)" },
    ...CREDENTIAL_OPTIONS,
  },
  relay: "socket",
  async run(context) {
    const iotaId = directoryId("<iota_id>", context.args.iota_id);
    const userIds = (context.values.users ?? "").split(",").map((id) => id.trim()).filter((id) => id !== "");
    const key = await credential(context.values, false);
    return session(context, () =>
      connectIota({ url: context.url(), iotaId, userIds, privateKeyHash: key.private_key_hash, reconnect: false }),
    );
  },
});

export const connectClientCommand = defineCommand({
  path: ["connect", "client"],
  summary: "Connect as a client (one device of a user): identify, print every frame, send what you type.",
  details: DETAILS,
  args: [
    { name: "iota_id", description: "the UUID of the user's Iota" },
    { name: "user_id", description: "the user's UUID" },
  ],
  options: CREDENTIAL_OPTIONS,
  relay: "socket",
  async run(context) {
    const iotaId = directoryId("<iota_id>", context.args.iota_id);
    const userId = directoryId("<user_id>", context.args.user_id);
    const key = await credential(context.values, false);
    return session(context, () =>
      connectClient({ url: context.url(), iotaId, userId, privateKeyHash: key.private_key_hash, reconnect: false }),
    );
  },
});

export const connectCallCommand = defineCommand({
  path: ["connect", "call"],
  summary: "Join a call as a member: identify, print every frame, send what you type.",
  details: DETAILS,
  args: [
    { name: "call_id", description: "the call's UUID" },
    { name: "user_id", description: "the member's user UUID" },
  ],
  options: CALL_OPTIONS,
  relay: "socket",
  async run(context) {
    const callId = anyId("<call_id>", context.args.call_id);
    const userId = directoryId("<user_id>", context.args.user_id);
    const key = await credential(context.values, false);
    let callState: CallState | undefined;
    if (context.values["call-state"] !== undefined) {
      const parsed = CallStateSchema.safeParse(context.values["call-state"]);
      if (!parsed.success) throw usageError(`--call-state: must be one of ${CallStateSchema.options.join(", ")}`);
      callState = parsed.data;
    }
    const userState = context.values["user-state"];
    if (userState !== undefined && (userState.length < 1 || userState.length > 64)) {
      throw usageError("--user-state: must be 1-64 characters");
    }
    return session(context, () =>
      joinCall({ url: context.url(), callId, userId, privateKeyHash: key.private_key_hash, callState, userState, reconnect: false }),
    );
  },
});

/** Runs one session: connect, then frames in both directions until one side ends it. */
async function session(context: Context<Options>, connect: () => Promise<Peer>): Promise<number> {
  const { out } = context;
  const received = (frame: Frame) => out.event({ direction: "in", frame }, `<- ${describeFrame(frame)}  ${JSON.stringify(frame)}`);
  let peer: Peer;
  try {
    peer = await connect();
  } catch (error) {
    if (error instanceof RefusedError) {
      received(error.frame);
      throw new CliError(EXIT.failed, "refused", `identification refused: ${error.frame.type}, close ${error.code} ${error.reason}`);
    }
    if (error instanceof ConnectionClosedError) {
      // 1006 before any frame: the upgrade failed (nothing listening, or an HTTP refusal).
      const code = error.code === 1006 ? EXIT.unreachable : EXIT.failed;
      throw new CliError(code, code === EXIT.unreachable ? "unreachable" : "closed", `cannot connect to ${context.url()}: ${error.message}`);
    }
    throw error;
  }
  if (peer.identification) received(peer.identification);
  peer.on("message", received);
  for (const type of PUSHES) peer.on(type, received);
  if (!out.json) out.note("(identified; /help lists what you can type)");

  const send = (frame: OutboundFrame) => {
    const id = peer.send(frame);
    const sent = { ...frame, id };
    out.event({ direction: "out", frame: sent }, `-> ${describeFrame(sent)}  ${JSON.stringify(sent)}`);
  };
  const input = (async () => {
    for await (const raw of context.io.stdin()) {
      if (peer.state === "closed") return;
      const line = parseLine(raw);
      if (line === null) continue;
      if ("error" in line) out.note(`(${line.error})`);
      else if ("frame" in line) send(line.frame);
      else if (line.command === "help") out.note(INPUT_HELP);
      else if (line.command === "quit") return;
      else send({ type: "ping", log: { message: "Ping", log_level: -1 }, data: {} });
    }
    // End of input: the pong to one last ping comes after the replies to everything before it.
    if (peer.state === "identified") await peer.ping().catch(() => {});
  })();

  const ended = await Promise.race([
    peer.closed.then((closed) => ({ by: "relay" as const, ...closed })),
    input.then(() => ({ by: "you" as const })),
    context.io.interrupted().then(() => ({ by: "you" as const })),
  ]);
  const closed = ended.by === "relay" ? ended : await peer.close(1000, "bye");
  out.event({ direction: "closed", code: closed.code, reason: closed.reason }, `(closed ${closed.code}${closed.reason ? ` ${closed.reason}` : ""})`);
  return ended.by === "you" || closed.code === 1000 ? EXIT.ok : EXIT.failed;
}
