/**
 * The fault switch of the `worker-faults` project (test/worker-faults/entry.ts) must be
 * unreachable from the production Worker: the faults are module state of that test entry, so
 * the only way production could set one is by bundling that module. This bundles the Worker
 * from wrangler.toml's `main`, as wrangler does, and checks what went in.
 *
 * Runs in Node: the bundler is a Node tool.
 */
import { readFile } from "node:fs/promises";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";

async function productionBundle() {
  const toml = await readFile("wrangler.toml", "utf8");
  const main = /^main\s*=\s*"([^"]+)"/m.exec(toml)?.[1];
  expect(main).toBe("src/index.ts");
  return build({
    entryPoints: [main as string],
    bundle: true,
    write: false,
    metafile: true,
    format: "esm",
    platform: "neutral",
    mainFields: ["module", "main"],
    conditions: ["workerd", "worker", "browser"],
    external: ["cloudflare:*", "node:*"],
    logLevel: "silent",
  });
}

describe("the fault switch is test-only", () => {
  it("is not in the production Worker's import graph, nor is any other test module", async () => {
    const bundle = await productionBundle();
    const inputs = Object.keys(bundle.metafile.inputs);
    expect(inputs).toContain("src/index.ts");
    expect(inputs.filter((path) => path.startsWith("test/"))).toEqual([]);
    const code = bundle.outputFiles.map((file) => file.text).join("\n");
    // The switch's own names: none may reach the production bundle by another route either.
    for (const name of ["directoryUnreachable", "failNextPush", "failNextRecordPush", "(injected)"]) {
      expect(code).not.toContain(name);
    }
  });
});
