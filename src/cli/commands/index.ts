/** Every command of the CLI, in the order `omikron --help` lists them. */
import type { Command } from "../command.ts";
import { connectCallCommand, connectClientCommand, connectIotaCommand } from "./connect.ts";
import { demo } from "./demo.ts";
import { iotaAdd, iotaLs, iotaRm, iotaShow } from "./iota.ts";
import { keygen } from "./keygen.ts";
import { callShow, presence } from "./presence.ts";
import { userAdd, userLs, userRm, userShow } from "./user.ts";

export const COMMANDS: readonly Command[] = [
  iotaAdd,
  iotaShow,
  iotaRm,
  iotaLs,
  userAdd,
  userShow,
  userRm,
  userLs,
  presence,
  callShow,
  keygen,
  connectIotaCommand,
  connectClientCommand,
  connectCallCommand,
  demo,
];
