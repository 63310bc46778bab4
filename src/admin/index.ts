/**
 * The admin API (SPEC §8.2) behind a bearer token. Checks run in the order the spec gives:
 * 503 (no token configured), 401 (`guard.ts`), then path id, route and method, body.
 */
import { Hono } from "hono";
import type { Env } from "../env";
import { audit } from "./audit";
import { guard } from "./guard";
import { presence } from "./presence";
import { records } from "./records";

export const admin = new Hono<{ Bindings: Env }>();

admin.use("*", audit);
admin.use("*", guard);
admin.route("/", records);
admin.route("/", presence);
