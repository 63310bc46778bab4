// @ts-check
/**
 * Builds the peer library for outside consumers of `omikron/peer`: one ES module
 * (dist/peer/index.js, no dependency, no Node built-ins, so it loads in browsers, Node,
 * Workers and Deno), the zod schemas as `omikron/peer/schemas` (dist/peer/schemas.js, zod
 * left to the package's own dependency), and their declarations (dist/peer/types). Inside the
 * repository, code imports src/peer/index.ts directly. `bundlePeer` is also what the browser
 * tests load into pages. Run by `npm run build:peer` and by `prepare`.
 */
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const PEER_ENTRY = join(ROOT, "src", "peer", "index.ts");

/**
 * Bundles the peer library. `platform: "neutral"` fails the build if anything reaches for a
 * Node built-in, so the library cannot grow a Node-only dependency unnoticed.
 * @param {{ outfile?: string, minify?: boolean }} [options] without `outfile`, answers the code
 * @returns {Promise<string>}
 */
export async function bundlePeer(options = {}) {
  const result = await build({
    entryPoints: [PEER_ENTRY],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    minify: options.minify ?? false,
    outfile: options.outfile,
    write: options.outfile !== undefined,
    logLevel: "silent",
  });
  return options.outfile ? "" : (result.outputFiles?.[0]?.text ?? "");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await bundlePeer({ outfile: join(ROOT, "dist", "peer", "index.js"), minify: true });
  await build({
    entryPoints: [join(ROOT, "src", "peer", "schemas.ts")],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    external: ["zod"],
    outfile: join(ROOT, "dist", "peer", "schemas.js"),
    logLevel: "silent",
  });
  execFileSync(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", join(ROOT, "src", "peer", "tsconfig.build.json")], {
    stdio: "inherit",
  });
  console.log("built dist/peer/index.js and dist/peer/types");
}
