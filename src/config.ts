import { z } from "zod";

/** A var may be written as a TOML number or a string; both mean the same positive integer. */
const count = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const ConfigSchema = z.object({
  IOTA_AUTH: z.enum(["required", "off"]).default("required"),
  DIRECTORY: z.enum(["builtin"]).default("builtin"),
  // An empty secret is treated as none, so the admin API stays disabled rather than open.
  // Surrounding whitespace (a secret piped in with its newline) is dropped: no HTTP header
  // value can carry it, so the untrimmed token could never be presented.
  ADMIN_TOKEN: z.string().optional().transform((token) => token?.trim() || undefined),
  MAX_MESSAGE_BYTES: count(1_048_576),
  RATE_LIMIT_PER_SEC: count(100),
  RATE_LIMIT_BURST: count(200),
  IOTA_RATE_LIMIT_PER_SEC: count(5_000),
  IOTA_RATE_LIMIT_BURST: count(10_000),
  RATE_LIMIT_CLOSE_AFTER_MS: count(10_000),
  IDENTIFY_TIMEOUT_MS: count(10_000),
  MAX_DEVICES_PER_USER: count(16),
  CALL_MAX_MEMBERS: count(64),
  MAX_UNIDENTIFIED_PER_OBJECT: count(256),
});

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {}

const parsed = new WeakMap<object, Config>();

/**
 * The validated configuration for an `env`. The env object lives as long as the isolate,
 * so each one is parsed once; a bad value fails every request loudly instead of being guessed.
 */
export function configOf(env: object): Config {
  let config = parsed.get(env);
  if (!config) {
    const result = ConfigSchema.safeParse(env);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new ConfigError(`invalid configuration: ${issue?.path.join(".")}: ${issue?.message}`);
    }
    config = result.data;
    parsed.set(env, config);
  }
  return config;
}
