#!/usr/bin/env node
// @ts-check
/**
 * `npm run bench`: relay latency and throughput of a real local Omikron (wrangler's dev
 * server, started exactly as the end-to-end tests start it), measured from this process
 * over 127.0.0.1. Absolute numbers depend on the machine, so every result is also given as
 * a ratio to a baseline measured in the same run: the literal "ping" → "pong" that the
 * runtime answers without waking the Durable Object. See bench/README.md.
 */
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";
import { startRelay, uuid } from "../test/e2e/harness.mjs";

/** @param {string} name @param {number} fallback */
function setting(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return value;
}

const SETTINGS = {
  users: setting("BENCH_USERS", 8),
  window: setting("BENCH_WINDOW", 64),
  messages: setting("BENCH_MESSAGES", 10_000),
  samples: setting("BENCH_SAMPLES", 400),
  payloadBytes: setting("BENCH_PAYLOAD_BYTES", 64),
  /** Each phase ends after this long even if its count is not reached, so the run is bounded. */
  phaseMs: setting("BENCH_PHASE_MS", 5_000),
};

/**
 * The run's bounds: measuring stops at RUN_BUDGET_MS (later phases then report n = 0),
 * and a run that hangs anyway (say, the server never starts) is stopped at RUN_LIMIT_MS.
 */
const RUN_BUDGET_MS = 50_000;
const RUN_LIMIT_MS = 60_000;
const WARMUP = 200;
const WARMUP_MS = 1_000;
const runStarted = performance.now();

/** The end of a phase that may take `ms`, never beyond the run's budget. */
function deadlineIn(/** @type {number} */ ms) {
  return Math.min(performance.now() + ms, runStarted + RUN_BUDGET_MS);
}

/**
 * The wrangler.toml rate limits (100 msg/s per client socket) would make this a benchmark
 * of the rate limiter; lifted here so the relay itself is measured.
 */
const UNLIMITED = String(1_000_000_000);
const VARS = {
  RATE_LIMIT_PER_SEC: UNLIMITED,
  RATE_LIMIT_BURST: UNLIMITED,
  IOTA_RATE_LIMIT_PER_SEC: UNLIMITED,
  IOTA_RATE_LIMIT_BURST: UNLIMITED,
};

/** @typedef {import("../test/e2e/harness.mjs").Peer} Peer */
/** @typedef {import("../test/e2e/harness.mjs").Frame} Frame */
/** @typedef {{ label: string, latencies: number[], count: number, elapsedMs: number, errors: number, note?: string }} Result */

const pad = "x".repeat(SETTINGS.payloadBytes);

/** @param {string} text */
function parse(text) {
  return /** @type {Frame} */ (JSON.parse(text));
}

// ---- statistics ---------------------------------------------------------------------------

/** @param {number[]} sorted @param {number} q */
function quantile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** @param {Result} result */
function summary(result) {
  const sorted = [...result.latencies].sort((a, b) => a - b);
  return {
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    perSecond: result.count / (result.elapsedMs / 1000),
  };
}

// ---- one message in flight ------------------------------------------------------------------

/**
 * Runs `once` up to `samples` times (or until the phase time is up), timing each.
 * @param {string} label
 * @param {() => Promise<boolean>} once answers whether the reply was the expected one
 * @returns {Promise<Result>}
 */
async function sequential(label, once) {
  const warmEnd = deadlineIn(WARMUP_MS);
  for (let i = 0; i < Math.min(WARMUP, SETTINGS.samples) && performance.now() < warmEnd; i++) await once();
  const latencies = [];
  let errors = 0;
  const start = performance.now();
  const deadline = deadlineIn(SETTINGS.phaseMs);
  while (latencies.length < SETTINGS.samples && performance.now() < deadline) {
    const t0 = performance.now();
    const ok = await once();
    latencies.push(performance.now() - t0);
    if (!ok) errors++;
  }
  const note = latencies.length < SETTINGS.samples ? `stopped at its time limit after ${latencies.length} samples` : undefined;
  return { label, latencies, count: latencies.length, elapsedMs: performance.now() - start, errors, note };
}

// ---- a window of messages in flight ---------------------------------------------------------

/**
 * A sender and its receiver: messages on one lane arrive in the order sent (SPEC §4,
 * ordering per sender and receiver), so send times are matched first in, first out.
 * @typedef {{ send: (seq: number) => void, sentAt: number[], head: number, nextSeq: number }} Lane
 */

/**
 * Keeps `window` messages in flight, spread over the lanes, until `total` have arrived or
 * the phase time is up. Answers the result and `receive(lane, seq)` for the handlers.
 * @param {string} label
 * @param {((seq: number) => void)[]} senders one per lane
 * @param {number} total
 * @param {number} ms how long the phase may take
 */
function windowed(label, senders, total, ms) {
  /** @type {Lane[]} */
  const lanes = senders.map((send) => ({ send, sentAt: [], head: 0, nextSeq: 0 }));
  const perLane = Math.max(1, Math.floor(SETTINGS.window / lanes.length));
  /** @type {number[]} */
  const latencies = [];
  let launched = 0;
  let errors = 0;
  let finished = false;
  let start = 0;
  /** @type {(result: Result) => void} */
  let settle = () => {};
  /** @type {Promise<Result>} */
  const result = new Promise((resolve) => {
    settle = resolve;
  });
  /** @type {NodeJS.Timeout | undefined} */
  let timer;

  const finish = (/** @type {string | undefined} */ note) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    settle({ label, latencies, count: latencies.length, elapsedMs: performance.now() - start, errors, note });
  };

  /** @param {Lane} lane */
  const launch = (lane) => {
    launched++;
    lane.sentAt.push(performance.now());
    lane.send(lane.nextSeq++);
  };

  return {
    result,
    run() {
      start = performance.now();
      const left = Math.max(0, deadlineIn(ms) - start);
      timer = setTimeout(() => finish(`stopped at its time limit (${Math.round(left)} ms) after ${latencies.length} messages`), left);
      for (let i = 0; i < perLane; i++) for (const lane of lanes) if (launched < total) launch(lane);
      return result;
    },
    /**
     * @param {number} index the lane
     * @param {number | null} seq the sequence number the frame carried, if it carries one
     */
    receive(index, seq) {
      if (finished) return;
      const lane = lanes[index];
      if (!lane) return;
      // A frame out of order or lost (an error frame in its place) counts as an error.
      if (seq !== null && seq !== lane.head) errors++;
      const sentAt = lane.sentAt[lane.head++];
      if (sentAt !== undefined) latencies.push(performance.now() - sentAt);
      if (latencies.length >= total) return finish(undefined);
      if (launched < total) launch(lane);
    },
    error() {
      errors++;
    },
  };
}

// ---- the run ------------------------------------------------------------------------------

/**
 * @param {import("../test/e2e/harness.mjs").Relay} relay
 * @returns {Promise<{ latency: Result[], throughput: Result[] }>}
 */
async function measure(relay) {
  const iota = await relay.createIota();
  /** @type {import("../test/e2e/harness.mjs").User[]} */
  const users = [];
  for (let i = 0; i < SETTINGS.users; i++) users.push(await relay.createUser(iota));
  const { peer: iotaPeer } = await relay.connectIota(iota, users.map((user) => `${user.id},`).join(""));
  /** @type {Peer[]} */
  const clients = [];
  for (const user of users) clients.push((await relay.connectClient(user)).peer);
  for (let i = 0; i < users.length; i++) {
    const frame = await iotaPeer.next();
    if (frame.type !== "client_connected") throw new Error(`expected client_connected, got ${JSON.stringify(frame)}`);
  }
  const laneOf = new Map(users.map((user, index) => [user.id, index]));
  const client = clients[0];
  const user = users[0];
  if (!client || !user) throw new Error("BENCH_USERS must be at least 1");

  /** @param {string} id @param {Record<string, unknown>} [extra] */
  const benchFrame = (id, extra = {}) => JSON.stringify({ id, type: "bench", data: { pad }, ...extra });

  // --- latency, one message in flight ---
  /** @type {Result[]} */
  const latency = [];
  latency.push(
    await sequential('"ping" → "pong" (baseline)', async () => {
      client.send("ping");
      return (await client.nextText()) === "pong";
    }),
  );
  latency.push(
    await sequential("GET /health", async () => {
      const response = await fetch(`${relay.httpUrl}/health`);
      return response.status === 200 && (await response.text()) === '{"ok":true}';
    }),
  );
  latency.push(
    await sequential("JSON ping → pong (wakes the hub)", async () => {
      const id = uuid();
      const reply = await client.request({ id, type: "ping", data: {} });
      return reply.type === "pong" && reply.id === id;
    }),
  );
  latency.push(
    await sequential("client → Iota", async () => {
      const id = uuid();
      client.send(benchFrame(id));
      const got = parse(await iotaPeer.nextText());
      return got.id === id && got.sender_id === user.id;
    }),
  );
  latency.push(
    await sequential("Iota → client", async () => {
      const id = uuid();
      iotaPeer.send(benchFrame(id, { receiver_id: user.id }));
      const got = parse(await client.nextText());
      return got.id === id && got.sender_id === iota.id;
    }),
  );
  latency.push(
    await sequential("client → Iota → client", async () => {
      const id = uuid();
      client.send(benchFrame(id));
      const request = parse(await iotaPeer.nextText());
      iotaPeer.send(benchFrame(request.id, { receiver_id: request.sender_id }));
      const got = parse(await client.nextText());
      return got.id === id && got.sender_id === iota.id;
    }),
  );

  // --- throughput, a window of messages in flight ---
  /** @type {Result[]} */
  const throughput = [];
  /**
   * Ids carry the phase and the sequence number. A frame of an earlier phase (possible only
   * when a phase hit its time limit) answers null and is ignored; any other frame than the
   * bench's own counts as an error.
   * @param {Frame} frame @param {string} tag
   */
  const seqOf = (frame, tag) => {
    if (frame.type !== "bench") return Number.NaN;
    return frame.id.startsWith(tag) ? Number(frame.id.slice(tag.length)) : null;
  };

  /**
   * Runs one windowed phase after a short warm-up of the same traffic. `install` points the
   * sockets' frame handlers at the phase; they stay in streaming mode from then on.
   * @param {string} label
   * @param {(tag: string) => { senders: ((seq: number) => void)[], install: (run: ReturnType<typeof windowed>) => void }} setup
   */
  const phase = async (label, setup) => {
    for (const [name, total, ms] of /** @type {const} */ ([["warm", WARMUP, WARMUP_MS], ["run", SETTINGS.messages, SETTINGS.phaseMs]])) {
      const tag = `${name}-${uuid().slice(0, 8)}-`;
      const { senders, install } = setup(tag);
      const run = windowed(label, senders, total, ms);
      install(run);
      const result = await run.run();
      if (name === "run") throughput.push(result);
    }
  };

  /**
   * A receiver's handler: frames of this phase from `sender` complete a lane's message.
   * @param {ReturnType<typeof windowed>} run @param {string} tag @param {(frame: Frame) => number | undefined} laneOfFrame
   */
  const receiver = (run, tag, laneOfFrame) => (/** @type {string} */ text) => {
    const frame = parse(text);
    const seq = seqOf(frame, tag);
    if (seq === null) return;
    const lane = laneOfFrame(frame);
    if (Number.isNaN(seq) || lane === undefined) return run.error();
    run.receive(lane, seq);
  };

  await phase('"ping" → "pong" (baseline)', () => ({
    senders: clients.map((peer) => () => peer.send("ping")),
    install: (run) => {
      clients.forEach((peer, index) => peer.stream((text) => (text === "pong" ? run.receive(index, null) : run.error())));
    },
  }));

  await phase("client → Iota", (tag) => ({
    senders: clients.map((peer) => (seq) => peer.send(benchFrame(`${tag}${seq}`))),
    install: (run) => {
      iotaPeer.stream(receiver(run, tag, (frame) => laneOf.get(frame.sender_id ?? "")));
    },
  }));

  await phase("Iota → client", (tag) => ({
    senders: users.map((to) => (seq) => iotaPeer.send(benchFrame(`${tag}${seq}`, { receiver_id: to.id }))),
    install: (run) => {
      clients.forEach((peer, index) => peer.stream(receiver(run, tag, (frame) => (frame.sender_id === iota.id ? index : undefined))));
    },
  }));

  await phase("client → Iota → client (round trips)", (tag) => ({
    senders: clients.map((peer) => (seq) => peer.send(benchFrame(`${tag}${seq}`))),
    install: (run) => {
      iotaPeer.stream((text) => {
        const frame = parse(text);
        iotaPeer.send(benchFrame(frame.id, { receiver_id: frame.sender_id }));
      });
      clients.forEach((peer, index) => peer.stream(receiver(run, tag, (frame) => (frame.sender_id === iota.id ? index : undefined))));
    },
  }));

  return { latency, throughput };
}

// ---- the report ---------------------------------------------------------------------------

/** @param {number} value @param {number} digits */
const fixed = (value, digits) => (Number.isFinite(value) ? value.toFixed(digits) : "-");

/** @param {string[][]} rows */
function table(rows) {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length))) ?? [];
  return rows
    .map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join("  "))
    .join("\n");
}

/** @param {{ latency: Result[], throughput: Result[] }} results */
function report({ latency, throughput }) {
  const baseLatency = latency[0] ? summary(latency[0]).p50 : Number.NaN;
  const baseRate = throughput[0] ? summary(throughput[0]).perSecond : Number.NaN;
  const wrangler = createRequire(import.meta.url)("wrangler/package.json").version;

  console.log(
    `\nOmikron relay benchmark: node ${process.version}, wrangler ${wrangler}, 127.0.0.1, ` +
      `${SETTINGS.users} users with one device each, ${SETTINGS.payloadBytes}-byte payloads, rate limits lifted`,
  );
  console.log(`baseline: the runtime's "ping" → "pong" auto-response, p50 ${fixed(baseLatency, 3)} ms, ${fixed(baseRate, 0)} msg/s\n`);

  const latencyRows = [["latency, one in flight", "p50 ×base", "p99 ×base", "p50 ms", "p99 ms", "n", "errors"]];
  for (const result of latency) {
    const { p50, p99 } = summary(result);
    latencyRows.push([result.label, fixed(p50 / baseLatency, 2), fixed(p99 / baseLatency, 2), fixed(p50, 3), fixed(p99, 3), String(result.count), String(result.errors)]);
  }
  console.log(table(latencyRows));

  const rateRows = [[`throughput, window ${SETTINGS.window}`, "msg/s", "×base", "p50 ×base", "p99 ×base", "p50 ms", "p99 ms", "n", "errors"]];
  for (const result of throughput) {
    const { p50, p99, perSecond } = summary(result);
    rateRows.push([
      result.label,
      fixed(perSecond, 0),
      fixed(perSecond / baseRate, 2),
      fixed(p50 / baseLatency, 1),
      fixed(p99 / baseLatency, 1),
      fixed(p50, 2),
      fixed(p99, 2),
      String(result.count),
      String(result.errors),
    ]);
  }
  console.log(`\n${table(rateRows)}`);
  for (const result of [...latency, ...throughput]) if (result.note) console.log(`note: ${result.label}: ${result.note}`);
  console.log(
    "\nRatios: latency as multiples of the baseline's one-in-flight p50; msg/s relative to the baseline's msg/s with the same window.",
  );
  return [...latency, ...throughput].every((result) => result.errors === 0);
}

// ---- main ---------------------------------------------------------------------------------

/** @type {import("../test/e2e/harness.mjs").Relay | undefined} */
let relay;
const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${RUN_LIMIT_MS / 1000} s; stopping`);
  setTimeout(() => process.exit(2), 5_000).unref();
  void (relay ? relay.stop() : Promise.resolve()).finally(() => process.exit(2));
}, RUN_LIMIT_MS);
watchdog.unref();

let exitCode = 0;
try {
  relay = await startRelay({ vars: VARS });
  console.log(`server up in ${fixed((performance.now() - runStarted) / 1000, 1)} s at ${relay.httpUrl}; measuring...`);
  const clean = report(await measure(relay));
  if (!clean) {
    console.error("bench: some replies were missing or unexpected (see the errors column)");
    exitCode = 1;
  }
} catch (error) {
  console.error("bench failed:", error);
  if (relay) console.error(`last relay log lines:\n${relay.logs.slice(-20).join("\n")}`);
  exitCode = 1;
} finally {
  await relay?.stop();
  clearTimeout(watchdog);
}
console.log(`total ${fixed((performance.now() - runStarted) / 1000, 1)} s`);
process.exit(exitCode);
