import { z } from "zod";

/** A var may be written as a TOML number or a string; both mean the same positive integer. */
const count = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** Like `count`, but 0 is allowed and means "off". */
const countOrOff = (fallback: number) => z.coerce.number().int().nonnegative().default(fallback);

/** The shortest admin token accepted (SPEC §8.2 r2): a guessable secret is a broken deployment. */
export const MIN_ADMIN_TOKEN_LENGTH = 32;

/**
 * `CORS_ORIGINS` (SPEC §3 r2): comma-separated origins such as `https://admin.example`. Each
 * item must be exactly an origin (scheme, host, port), since that is what a browser's `Origin`
 * header carries and is compared against; `*` is not accepted, so opening the admin API to
 * every web page takes listing them.
 */
const origins = z
  .string()
  .default("")
  .transform((value, context) => {
    const items = value
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== "");
    for (const item of items) {
      let origin: string | null = null;
      try {
        origin = new URL(item).origin;
      } catch {
        origin = null;
      }
      if (origin !== item) {
        context.addIssue({ code: "custom", message: "every item must be an origin such as https://admin.example" });
        return z.NEVER;
      }
    }
    return new Set(items);
  });

const ConfigSchema = z.object({
  IOTA_AUTH: z.enum(["required", "off"]).default("required"),
  DIRECTORY: z.enum(["builtin"]).default("builtin"),
  // An empty secret is treated as none, so the admin API stays disabled rather than open.
  // Surrounding whitespace (a secret piped in with its newline) is dropped: no HTTP header
  // value can carry it, so the untrimmed token could never be presented.
  ADMIN_TOKEN: z
    .string()
    .optional()
    .transform((token) => token?.trim() || undefined)
    .refine((token) => token === undefined || token.length >= MIN_ADMIN_TOKEN_LENGTH, {
      message: `must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`,
    }),
  MAX_MESSAGE_BYTES: count(1_048_576),
  RATE_LIMIT_PER_SEC: count(100),
  RATE_LIMIT_BURST: count(200),
  IOTA_RATE_LIMIT_PER_SEC: count(5_000),
  IOTA_RATE_LIMIT_BURST: count(10_000),
  RATE_LIMIT_BYTES_PER_SEC: count(1_048_576),
  RATE_LIMIT_BYTES_BURST: count(4_194_304),
  IOTA_RATE_LIMIT_BYTES_PER_SEC: count(16_777_216),
  IOTA_RATE_LIMIT_BYTES_BURST: count(67_108_864),
  RATE_LIMIT_CLOSE_AFTER_MS: count(10_000),
  IDENTIFY_TIMEOUT_MS: count(10_000),
  IDLE_TIMEOUT_MS: countOrOff(120_000),
  MAX_DEVICES_PER_USER: count(16),
  CALL_MAX_MEMBERS: count(64),
  MAX_UNIDENTIFIED_PER_OBJECT: count(256),
  MAX_CALLS_PER_USER: count(4),
  MAX_PENDING_LOOKUPS: count(64),
  CORS_ORIGINS: origins,
});

export type Config = z.infer<typeof ConfigSchema>;

/** A bad var (SPEC §9 r2). The message names the var and what it must be, never its value. */
export class ConfigError extends Error {
  constructor(readonly variable: string, problem: string) {
    super(`invalid configuration: ${variable} ${problem}`);
  }
}

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
      const variable = String(issue?.path[0] ?? "configuration");
      // zod's own messages name the expected type and bounds; a custom message is used where
      // one could echo the input. Neither carries the value, which may be a secret.
      throw new ConfigError(variable, problemOf(issue));
    }
    config = result.data;
    parsed.set(env, config);
  }
  return config;
}

function problemOf(issue: z.core.$ZodIssue | undefined): string {
  if (!issue) return "is invalid";
  switch (issue.code) {
    case "invalid_type":
      return issue.expected === "int" ? "must be an integer" : `must be a ${issue.expected}`;
    case "too_small":
      return `must be ${issue.inclusive ? "at least" : "greater than"} ${String(issue.minimum)}`;
    case "invalid_value":
      return `must be one of ${issue.values.map((value) => JSON.stringify(value)).join(", ")}`;
    case "custom":
      return issue.message;
    default:
      return "is invalid";
  }
}
