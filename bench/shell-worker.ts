/**
 * The benchmark's shells (bench/README.md): the Omikron's own Worker, objects and hub, whose
 * identified sockets' frames take the floor's forwarding (bench/floor) instead of the hub's
 * per-frame work. Upgrades, identification, the directory's records, the indexes and the
 * bindings are the hub's; only the per-frame work differs. With `BENCH_SHELL_SENDER_ID=1`
 * the shell also writes `sender_id` into the Iota's frames, as SPEC §5.2 requires of the hub
 * and the floor skips by design. Side by side they split the hub's cost over the floor:
 *
 * - shell/floor: running inside the Omikron (its bundle, bindings and objects);
 * - shell+id/shell: the `sender_id` on frames to clients (a splice and 51 more bytes out);
 * - hub/shell+id: the per-frame rules (size check, frame and byte buckets, idle stamp,
 *   envelope scan, reserved types, receiver check).
 *
 * Bench-only: production's entry is src/index.ts.
 */
import type { Env } from "../src/env";
import app, { CallRoom, Directory, Hub, UserRecord } from "../src/index";
import { receiverOf, spliced } from "./floor/forward";

export { CallRoom, Directory, UserRecord };

interface ShellEnv extends Env {
  BENCH_SHELL_SENDER_ID?: string;
}

export class ShellHub extends Hub {
  private readonly senderIdToClients: boolean;

  constructor(ctx: DurableObjectState, env: ShellEnv) {
    super(ctx, env);
    this.senderIdToClients = env.BENCH_SHELL_SENDER_ID === "1";
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    const attachment = this.attachment(ws);
    if (attachment.phase !== "identified" || typeof message !== "string") return super.webSocketMessage(ws, message);
    if (attachment.role === "client") {
      this.connected.iota?.send(spliced(message, attachment.userId ?? ""));
      return;
    }
    const receiver = receiverOf(message);
    const devices = receiver === undefined ? undefined : this.connected.clients.get(receiver);
    if (!devices) return;
    const relayed = this.senderIdToClients ? spliced(message, attachment.iotaId) : message;
    for (const device of devices) device.send(relayed);
  }
}

export { ShellHub as Hub };
export default app;
