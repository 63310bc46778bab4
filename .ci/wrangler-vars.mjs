// @ts-check
/**
 * The `[vars]` of wrangler.toml as strings, read the way wrangler reads the file. Test set-ups
 * pass every var (and the admin token) as an explicit binding: otherwise wrangler's local
 * runtime fills vars and secrets from the developer's `.dev.vars` (or `.env` and the process
 * environment), and a token or limit set there for `npm run dev` would change test results.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const CONFIG = join(dirname(fileURLToPath(import.meta.url)), "..", "wrangler.toml");

/** @returns {Promise<Record<string, string>>} */
export async function wranglerVars() {
  // Imported here, not at the top: wrangler reads the offline variables when it loads, and
  // callers set them first.
  const { unstable_readConfig } = await import("wrangler");
  const { vars } = unstable_readConfig({ config: CONFIG });
  return Object.fromEntries(Object.entries(vars).map(([name, value]) => [name, typeof value === "string" ? value : JSON.stringify(value)]));
}
