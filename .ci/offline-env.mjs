/**
 * The environment every local wrangler run needs on a machine without internet access:
 * no request.cf fetch, no metrics, and no local tracing (which slows the relay ten-fold).
 * Used by `npm run dev`, the end-to-end tests and the benchmark.
 */
export const OFFLINE_ENV = {
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_SEND_METRICS: "false",
  X_LOCAL_OBSERVABILITY: "false",
};

export function applyOfflineEnv(env = process.env) {
  Object.assign(env, OFFLINE_ENV);
  return env;
}
