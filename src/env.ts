import type { CallRoom } from "./call-room";
import type { Directory, UserRecord } from "./directory";
import type { Hub } from "./hub";

/** The Worker's bindings as wrangler.toml declares them; values are parsed by `config.ts`. */
export interface Env {
  HUB: DurableObjectNamespace<Hub>;
  CALL_ROOM: DurableObjectNamespace<CallRoom>;
  BUILTIN_DIRECTORY: DurableObjectNamespace<Directory>;
  USER_RECORD: DurableObjectNamespace<UserRecord>;
  ADMIN_TOKEN?: string;
  [name: string]: unknown;
}

declare global {
  namespace Cloudflare {
    interface Env {
      HUB: DurableObjectNamespace<Hub>;
      CALL_ROOM: DurableObjectNamespace<CallRoom>;
      BUILTIN_DIRECTORY: DurableObjectNamespace<Directory>;
      USER_RECORD: DurableObjectNamespace<UserRecord>;
    }
    interface GlobalProps {
      mainModule: typeof import("./index");
      durableNamespaces: "Hub" | "CallRoom" | "Directory" | "UserRecord";
    }
  }
}
