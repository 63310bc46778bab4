#!/usr/bin/env node
// @ts-check
/**
 * `node bench/codec.mjs`: what checking one frame costs inside workerd, for the ways the relay
 * could check it: the single-pass scanner (what the hub runs), JSON.parse + the zod schema
 * (what it ran before), JSON.parse alone, and nothing (the loop itself). Each way runs
 * BENCH_CODEC_N frames per request in bench/codec/worker.ts; the CPU is read from /proc for the
 * runtime's processes, alternating the ways over BENCH_ROUNDS rounds.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { applyOfflineEnv } from "../.ci/offline-env.mjs";
import { median } from "./common.mjs";
import { cpuNs, workerdChildren } from "./proc.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const N = Number(process.env.BENCH_CODEC_N ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

applyOfflineEnv();
const { unstable_startWorker } = await import("wrangler");
const persist = await mkdtemp(join(tmpdir(), "omikron-codec-"));
const before = new Set(workerdChildren());
const worker = await unstable_startWorker({
  config: join(HERE, "codec", "wrangler.toml"),
  dev: { server: { hostname: "127.0.0.1", port: 0 }, inspector: false, watch: false, liveReload: false, persist, logLevel: "warn" },
});
try {
  await worker.ready;
  const url = await worker.url;
  await fetch(url);
  const pids = workerdChildren().filter((pid) => !before.has(pid));
  const cpu = () => pids.reduce((sum, pid) => sum + cpuNs(pid), 0);
  /** @param {string} way @param {string} frame @param {number} n */
  const run = async (way, frame, n) => {
    const start = cpu();
    const response = await fetch(new URL(`/?way=${encodeURIComponent(way)}&frame=${frame}&n=${n}`, url));
    if ((await response.text()) !== String(n)) throw new Error(`${way} did not accept every frame`);
    return cpu() - start;
  };
  const ways = ["none", "scanner", "json+zod", "json"];
  /** @type {Record<string, number[]>} */
  const perFrame = {};
  for (const frame of ["up", "down"]) for (const way of ways) await run(way, frame, N / 10);
  for (let round = 0; round < ROUNDS; round++) {
    for (const frame of ["up", "down"]) {
      for (const way of ways) (perFrame[`${frame} ${way}`] ??= []).push((await run(way, frame, N)) / N);
    }
  }
  console.log(`envelope check in workerd, ${N} frames per request, median of ${ROUNDS} rounds (ns of workerd CPU per frame, loop included)`);
  for (const [name, values] of Object.entries(perFrame)) console.log(`  ${name.padEnd(16)} ${median(values).toFixed(0).padStart(6)}   rounds: ${values.map((v) => v.toFixed(0)).join(" ")}`);
} finally {
  await worker.dispose();
  await rm(persist, { recursive: true, force: true });
}
