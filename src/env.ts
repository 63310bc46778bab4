/**
 * The Worker's bindings, as `wrangler types` generates them from wrangler.toml into
 * `worker-configuration.d.ts` (`npm run cf-typegen`; CI fails when that file is stale).
 * Values are parsed by `config.ts`. ADMIN_TOKEN is a required secret, so a deploy without
 * it fails, but a local run may still lack it: the code must handle its absence (503).
 */
export type Env = Omit<Cloudflare.Env, "ADMIN_TOKEN"> & { ADMIN_TOKEN?: string };
