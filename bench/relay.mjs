#!/usr/bin/env node
// @ts-check
/**
 * `npm run bench` (first part): what relaying costs the Omikron's hub compared with the
 * runtime's floor, measured side by side in one run (SPEC §12). Four relays serve the same
 * traffic, each started the way it would run locally:
 *
 * - hub:   the Omikron from wrangler.toml (test/e2e/harness.mjs: unstable_startWorker,
 *          inspector off, X_LOCAL_OBSERVABILITY=false), rate limits lifted;
 * - floor: bench/floor, a bare hibernating Durable Object that splices sender_id and routes by
 *          receiver_id with no parsing, started the same way on the same workerd;
 * - ws:    bench/ws-relay.mjs, the floor's forwarding in a plain Node `ws` server;
 * - shell, shell+id: bench/shell-worker.ts, the Omikron's Worker and hub with the floor's
 *          forwarding for identified frames, the second also writing sender_id into the
 *          Iota's frames as SPEC §5.2 requires: they break the hub/floor ratio down into
 *          running inside the Omikron (shell/floor), the sender_id on frames to clients
 *          (shell+id/shell) and the per-frame rules (hub/shell+id).
 *
 * Clients connect to the Worker's runtime directly, past wrangler's local dev proxy (which
 * production does not have, and which would add its own CPU and four descriptors per socket);
 * every workerd process of a server is still measured.
 *
 * Traffic: BENCH_USERS clients of one Iota; a round trip is client → relay → Iota (the bench
 * answers at once) → relay → the client named by receiver_id, so two relayed messages. Each
 * round measures, per relay in alternation (the order rotates each round): unloaded RTT (one
 * round trip in flight, in batches interleaved between the relays), closed loop (BENCH_WINDOW
 * in flight: round trips/s, RTT p50/p99) and open loop at one fixed rate for all of them (CPU
 * per message is only comparable at the same rate), in short slices interleaved between the
 * relays so that load from elsewhere on the machine falls on each alike. CPU is read from /proc for
 * the relay's own processes (workerd, or the ws relay's node) over each phase. See bench/README.md.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { createRequire } from "node:module";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { Peer, startRelay, uuid } from "../test/e2e/harness.mjs";
import { applyOfflineEnv } from "../.ci/offline-env.mjs";
import { median, quantile, setting } from "./common.mjs";
import { cpuNs, directUrl, memoryOf, pin, workerdChildren } from "./proc.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));

const SETTINGS = {
  rounds: setting("BENCH_ROUNDS", 5),
  users: setting("BENCH_USERS", 8),
  window: setting("BENCH_WINDOW", 32),
  samples: setting("BENCH_SAMPLES", 500),
  phaseMs: setting("BENCH_PHASE_MS", 2_500),
  /** The open loop's phase is run in this many slices per relay, interleaved between the relays. */
  slices: setting("BENCH_SLICES", 10),
  /** Round trips per second of the open-loop phase; by default a quarter of the slowest closed-loop rate of round 1. */
  rate: process.env.BENCH_RATE ? setting("BENCH_RATE", 1) : 0,
  payloadBytes: setting("BENCH_PAYLOAD_BYTES", 64),
};

const RUN_LIMIT_MS = 15 * 60_000;
const UNLIMITED = String(1_000_000_000);
const VARS = {
  RATE_LIMIT_PER_SEC: UNLIMITED,
  RATE_LIMIT_BURST: UNLIMITED,
  IOTA_RATE_LIMIT_PER_SEC: UNLIMITED,
  IOTA_RATE_LIMIT_BURST: UNLIMITED,
  RATE_LIMIT_BYTES_PER_SEC: UNLIMITED,
  RATE_LIMIT_BYTES_BURST: UNLIMITED,
  IOTA_RATE_LIMIT_BYTES_PER_SEC: UNLIMITED,
  IOTA_RATE_LIMIT_BYTES_BURST: UNLIMITED,
};
const pad = "x".repeat(SETTINGS.payloadBytes);

// ---- the three relays -----------------------------------------------------------------------

/**
 * @typedef {object} Target
 * @property {string} name
 * @property {Peer} iota
 * @property {Peer[]} clients
 * @property {string[]} userIds
 * @property {number[]} pids the processes whose CPU is the relay's
 * @property {() => Promise<void>} stop
 */

/**
 * The Omikron, or with `shellVars` a shell (bench/shell-worker.ts); a shell's frames skip the
 * idle stamp, so its idle timeout is off (it would close the bench's sockets).
 * @param {string} name @param {Record<string, string>} [shellVars] @param {number} [inspectorPort] only for `--profile`
 * @returns {Promise<Target>}
 */
async function startHub(name, shellVars, inspectorPort = 0) {
  const before = new Set(workerdChildren());
  const relay = await startRelay(
    shellVars
      ? { vars: { ...VARS, ...shellVars, IDLE_TIMEOUT_MS: "0" }, entrypoint: join(HERE, "shell-worker.ts"), inspectorPort }
      : { vars: VARS, inspectorPort },
  );
  const iota = await relay.createIota();
  const users = [];
  for (let i = 0; i < SETTINGS.users; i++) users.push(await relay.createUser(iota));
  // Read only after a first request: wrangler may start a runtime process lazily.
  const pids = workerdChildren().filter((pid) => !before.has(pid));
  // With the inspector on (--profile) the runtime listens on more ports; its figures are shares
  // of the isolate's time, so going through wrangler's proxy changes nothing that is read.
  const ws = (inspectorPort ? new URL(relay.httpUrl) : directUrl(pids, new URL(relay.httpUrl))).href.replace(/^http/, "ws").replace(/\/$/, "");
  /** @param {string} path @param {Record<string, unknown>} data */
  const identified = async (path, data) => {
    const peer = await Peer.open(`${ws}${path}`);
    const reply = await peer.request({ id: uuid(), type: "identification", data });
    if (reply.type !== "identification_response" || reply.log?.log_level !== 0) throw new Error(`identification answered ${JSON.stringify(reply)}`);
    return peer;
  };
  const iotaPeer = await identified(`/ws/iota/${iota.id}`, {
    iota_id: iota.id,
    user_ids: users.map((user) => `${user.id},`).join(""),
    private_key_hash: iota.keyHash,
  });
  /** @type {Peer[]} */
  const clients = [];
  for (const user of users) {
    clients.push(await identified(`/ws/client/${iota.id}`, { iota_id: iota.id, user_id: user.id, private_key_hash: user.keyHash }));
    const pushed = await iotaPeer.next();
    if (pushed.type !== "client_connected") throw new Error(`expected client_connected, got ${JSON.stringify(pushed)}`);
  }
  const stop = async () => {
    for (const peer of [iotaPeer, ...clients]) peer.terminate();
    await relay.stop();
  };
  return { name, iota: iotaPeer, clients, userIds: users.map((user) => user.id), pids, stop };
}

/**
 * Connects one Iota and its clients to a relay that needs no identification.
 * @param {string} wsUrl @param {string} name @param {number[]} pids the relay's processes @param {() => Promise<void>} stop
 * @returns {Promise<Target>}
 */
async function connectBare(wsUrl, name, pids, stop) {
  const iotaId = uuid();
  const iota = await Peer.open(`${wsUrl}/ws/iota/${iotaId}`);
  const userIds = [];
  const clients = [];
  for (let i = 0; i < SETTINGS.users; i++) {
    const userId = uuid();
    userIds.push(userId);
    clients.push(await Peer.open(`${wsUrl}/ws/client/${iotaId}?user=${userId}`));
  }
  const all = [iota, ...clients];
  return {
    name,
    iota,
    clients,
    userIds,
    pids,
    stop: async () => {
      for (const peer of all) peer.terminate();
      await stop();
    },
  };
}

/** @returns {Promise<Target>} */
async function startFloor() {
  applyOfflineEnv();
  const { unstable_startWorker } = await import("wrangler");
  const persist = await mkdtemp(join(tmpdir(), "omikron-floor-"));
  const before = new Set(workerdChildren());
  const worker = await unstable_startWorker({
    config: join(HERE, "floor", "wrangler.toml"),
    // The dev options of test/e2e/harness.mjs, which starts the hub: the same runtime setup.
    dev: {
      server: { hostname: "127.0.0.1", port: 0 },
      inspector: false,
      watch: false,
      liveReload: false,
      persist,
      logLevel: "warn",
      structuredLogsHandler: () => {},
    },
  });
  await worker.ready;
  const proxyUrl = await worker.url;
  await fetch(proxyUrl).then((response) => response.text());
  const pids = workerdChildren().filter((pid) => !before.has(pid));
  const url = directUrl(pids, proxyUrl).href.replace(/^http/, "ws").replace(/\/$/, "");
  return connectBare(url, "floor", pids, async () => {
    await worker.dispose();
    await rm(persist, { recursive: true, force: true });
  });
}

/** @returns {Promise<Target>} */
async function startWsRelay() {
  const child = spawn(process.execPath, [join(HERE, "ws-relay.mjs")], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise((resolve, reject) => {
    child.stdout.once("data", (data) => resolve(Number(String(data).trim())));
    child.once("exit", (code) => reject(new Error(`ws relay exited with ${code}`)));
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("ws relay has no pid");
  return connectBare(`ws://127.0.0.1:${port}`, "ws", [pid], async () => {
    child.kill("SIGTERM");
  });
}

// ---- traffic --------------------------------------------------------------------------------

/**
 * @typedef {object} Phase
 * @property {number[]} rtts ms
 * @property {number} trips completed round trips
 * @property {number} errors frames that were not the expected one
 * @property {number} ms duration
 * @property {number} cpuNs the relay's CPU over the phase
 * @property {number[]} cpuByPid the same, per process (in the order of `Target.pids`)
 */

/**
 * Wires the target's sockets: the Iota answers every frame to its sender at once; a client's
 * frame completes the oldest round trip of its lane (frames on a lane arrive in order, SPEC §4).
 * `onTrip(lane)` is told of every completed round trip.
 * @param {Target} target
 */
function wire(target) {
  const lanes = target.clients.map(() => /** @type {number[]} */ ([]));
  const heads = lanes.map(() => 0);
  /** @type {{ onTrip: (lane: number, rtt: number) => void, errors: number }} */
  const state = { onTrip: () => {}, errors: 0 };
  const laneOf = new Map(target.userIds.map((id, lane) => [id, lane]));
  target.iota.stream((text) => {
    const frame = JSON.parse(text);
    if (frame.type !== "bench" || !laneOf.has(frame.sender_id)) {
      state.errors++;
      return;
    }
    target.iota.send(`{"id":"${frame.id}","type":"bench","receiver_id":"${frame.sender_id}","data":{"pad":"${pad}"}}`);
  });
  target.clients.forEach((client, lane) => {
    client.stream((text) => {
      const sentAt = lanes[lane]?.[heads[lane] ?? 0];
      if (!text.includes('"type":"bench"') || sentAt === undefined) {
        state.errors++;
        return;
      }
      heads[lane] = (heads[lane] ?? 0) + 1;
      state.onTrip(lane, performance.now() - sentAt);
    });
  });
  return {
    state,
    /** @param {number} lane */
    send(lane) {
      lanes[lane]?.push(performance.now());
      target.clients[lane]?.send(`{"id":"${uuid()}","type":"bench","data":{"pad":"${pad}"}}`);
    },
    outstanding() {
      return lanes.reduce((sum, lane, index) => sum + lane.length - (heads[index] ?? 0), 0);
    },
  };
}

/**
 * Runs `drive` until `done()` says so, measuring the relay's CPU and every round trip.
 * @param {Target} target @param {ReturnType<typeof wire>} wired
 * @param {(phase: { rtts: number[], trips: number, send: (lane: number) => void, finish: () => void }) => { onTrip: (lane: number, rtt: number) => void, start: () => void }} drive
 * @returns {Promise<Phase>}
 */
function phase(target, wired, drive) {
  return new Promise((resolve) => {
    /** @type {number[]} */
    const rtts = [];
    const errorsBefore = wired.state.errors;
    const cpuBefore = target.pids.map(cpuNs);
    const start = performance.now();
    let finished = false;
    const handle = {
      rtts,
      trips: 0,
      send: wired.send,
      finish() {
        if (finished) return;
        finished = true;
        wired.state.onTrip = () => {};
        const cpuByPid = target.pids.map((pid, i) => cpuNs(pid) - (cpuBefore[i] ?? 0));
        const cpu = cpuByPid.reduce((sum, ns) => sum + ns, 0);
        resolve({ rtts, trips: handle.trips, errors: wired.state.errors - errorsBefore, ms: performance.now() - start, cpuNs: cpu, cpuByPid });
      },
    };
    const driver = drive(handle);
    wired.state.onTrip = (/** @type {number} */ lane, /** @type {number} */ rtt) => {
      rtts.push(rtt);
      handle.trips++;
      driver.onTrip(lane, rtt);
    };
    driver.start();
  });
}

/** Waits until nothing is in flight (a phase that ended at its time limit leaves some). */
async function drain(/** @type {ReturnType<typeof wire>} */ wired) {
  const until = performance.now() + 5_000;
  while (wired.outstanding() > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
}

/** `count` round trips, one in flight at a time. */
function unloaded(/** @type {Target} */ target, /** @type {ReturnType<typeof wire>} */ wired, /** @type {number} */ count) {
  return phase(target, wired, (p) => ({
    start: () => p.send(0),
    onTrip: () => (p.trips >= count ? p.finish() : p.send(p.trips % target.clients.length)),
  }));
}

/** Unloaded round trips are taken in batches that alternate between the relays, so a burst of
 * load from elsewhere on the machine falls on all of them alike. */
const UNLOADED_BATCH = 25;

/**
 * Runs `slices` short phases on each relay in turn and sums each relay's slices into one
 * phase, so a burst of load from elsewhere on the machine falls on all of them alike.
 * @param {Target[]} order @param {Map<Target, ReturnType<typeof wire>>} wired @param {number} slices
 * @param {(target: Target, wired: ReturnType<typeof wire>, slice: number) => Promise<Phase>} run
 * @returns {Promise<Map<Target, Phase>>}
 */
async function interleaved(order, wired, slices, run) {
  /** @type {Map<Target, Phase>} */
  const merged = new Map(order.map((t) => [t, { rtts: [], trips: 0, errors: 0, ms: 0, cpuNs: 0, cpuByPid: t.pids.map(() => 0) }]));
  for (let slice = 0; slice < slices; slice++) {
    for (const target of order) {
      const w = /** @type {ReturnType<typeof wire>} */ (wired.get(target));
      const p = await run(target, w, slice);
      await drain(w);
      const m = /** @type {Phase} */ (merged.get(target));
      m.rtts.push(...p.rtts);
      m.trips += p.trips;
      m.errors += p.errors;
      m.ms += p.ms;
      m.cpuNs += p.cpuNs;
      p.cpuByPid.forEach((ns, i) => (m.cpuByPid[i] = (m.cpuByPid[i] ?? 0) + ns));
    }
  }
  return merged;
}

/** @param {Target[]} order @param {Map<Target, ReturnType<typeof wire>>} wired */
const unloadedInterleaved = (order, wired) =>
  interleaved(order, wired, Math.ceil(SETTINGS.samples / UNLOADED_BATCH), (target, w, slice) =>
    unloaded(target, w, Math.min(UNLOADED_BATCH, SETTINGS.samples - slice * UNLOADED_BATCH)),
  );

/** @param {Target[]} order @param {Map<Target, ReturnType<typeof wire>>} wired @param {number} rate */
const openInterleaved = (order, wired, rate) =>
  interleaved(order, wired, SETTINGS.slices, (target, w) => openLoop(target, w, rate, SETTINGS.phaseMs / SETTINGS.slices));

/** BENCH_WINDOW round trips in flight for `ms`. */
function closedLoop(/** @type {Target} */ target, /** @type {ReturnType<typeof wire>} */ wired, ms = SETTINGS.phaseMs) {
  return phase(target, wired, (p) => {
    let stopping = false;
    return {
      start() {
        setTimeout(() => {
          stopping = true;
        }, ms);
        const perLane = Math.max(1, Math.floor(SETTINGS.window / target.clients.length));
        for (let i = 0; i < perLane; i++) for (let lane = 0; lane < target.clients.length; lane++) p.send(lane);
      },
      onTrip(lane) {
        if (!stopping) p.send(lane);
        else if (wired.outstanding() === 0) p.finish();
      },
    };
  });
}

/** `rate` round trips per second for `ms`, sent on a 5 ms tick whatever comes back. */
function openLoop(/** @type {Target} */ target, /** @type {ReturnType<typeof wire>} */ wired, /** @type {number} */ rate, ms = SETTINGS.phaseMs) {
  return phase(target, wired, (p) => {
    let sent = 0;
    let lane = 0;
    let done = false;
    const total = Math.round((rate * ms) / 1000);
    return {
      start() {
        const began = performance.now();
        const tick = setInterval(() => {
          const due = Math.min(total, Math.round(((performance.now() - began) * rate) / 1000));
          for (; sent < due; sent++) {
            p.send(lane);
            lane = (lane + 1) % target.clients.length;
          }
          if (sent >= total) {
            clearInterval(tick);
            done = true;
            setTimeout(() => p.finish(), 5_000).unref();
          }
        }, 5);
      },
      onTrip() {
        if (done && wired.outstanding() === 0) p.finish();
      },
    };
  });
}

/** @typedef {{ unloaded: Phase[], closed: Phase[], open: Phase[], together: Phase[] }} Results */

// ---- statistics and the report --------------------------------------------------------------

/** @param {number} value @param {number} digits */
const fixed = (value, digits) => (Number.isFinite(value) ? value.toFixed(digits) : "-");

/** CPU µs per relayed message: two per round trip. @param {Phase} p */
const cpuPerMessage = (p) => p.cpuNs / 1000 / (2 * p.trips);

/** @param {string[][]} rows */
function table(rows) {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length))) ?? [];
  return rows.map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join("  ")).join("\n");
}

// ---- --profile: where the hub's JavaScript time goes ------------------------------------------

/** A port nothing listens on now. @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * V8's sampling profiler in the isolate behind a devtools inspector port.
 * @param {number} port
 */
async function profilerAt(port) {
  const listed = /** @type {{ webSocketDebuggerUrl: string }[]} */ (await (await fetch(`http://127.0.0.1:${port}/json`)).json());
  const debuggerUrl = listed[0]?.webSocketDebuggerUrl;
  if (!debuggerUrl) throw new Error("the inspector lists no Worker");
  const cdp = new WebSocket(debuggerUrl);
  await new Promise((resolve, reject) => cdp.once("open", resolve).once("error", reject));
  let sequence = 0;
  /** @type {Map<number, (result: unknown) => void>} */
  const replies = new Map();
  cdp.on("message", (data) => {
    const reply = JSON.parse(String(data));
    replies.get(reply.id)?.(reply.result);
    replies.delete(reply.id);
  });
  /** @param {string} method @param {Record<string, unknown>} [params] @returns {Promise<unknown>} */
  const call = (method, params = {}) =>
    new Promise((resolve) => {
      const id = ++sequence;
      replies.set(id, resolve);
      cdp.send(JSON.stringify({ id, method, params }));
    });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: PROFILE_INTERVAL_US });
  return {
    start: () => call("Profiler.start"),
    /** Samples per function (self time) since `start()`. @returns {Promise<Map<string, number>>} */
    async stop() {
      const { profile: taken } = /** @type {{ profile: { nodes: { id: number, callFrame: { functionName: string, url: string, lineNumber: number } }[], samples: number[] } }} */ (
        await call("Profiler.stop")
      );
      const nodes = new Map(taken.nodes.map((node) => [node.id, node.callFrame]));
      /** @type {Map<string, number>} */
      const self = new Map();
      for (const sample of taken.samples) {
        const frame = nodes.get(sample);
        const name = frame ? `${frame.functionName || "(anonymous)"}${frame.url ? ` ${frame.url.split("/").at(-1)}:${frame.lineNumber + 1}` : ""}` : "?";
        self.set(name, (self.get(name) ?? 0) + 1);
      }
      return self;
    },
    close: () => cdp.close(),
  };
}

const PROFILE_INTERVAL_US = 50;

/**
 * `node bench/relay.mjs --profile`: the hub and the shell+id (the same Worker with the floor's
 * forwarding and the Iota frames' sender_id, see bench/shell-worker.ts), each with the
 * devtools inspector on, under the closed loop in alternating slices for BENCH_PROFILE_MS each
 * while V8's sampling profiler runs in their isolates. Prints for both the isolate's busy
 * JavaScript time and the runtime's CPU per relayed message, and for the hub each function's
 * self time: the difference between the two isolates is what the per-frame rules' JavaScript
 * costs. The inspector roughly doubles the runtime's CPU, so the absolute figures are
 * inflated; compare within the run. Nothing else measures with the inspector on.
 */
async function profile() {
  const total = setting("BENCH_PROFILE_MS", 10_000);
  const slices = 5;
  /** @type {{ target: Target, wired: ReturnType<typeof wire>, profiler: Awaited<ReturnType<typeof profilerAt>>, self: Map<string, number>, messages: number, cpuNs: number }[]} */
  const runs = [];
  try {
    for (const [name, shellVars] of /** @type {const} */ ([["hub", undefined], ["shell+id", { BENCH_SHELL_SENDER_ID: "1" }]])) {
      const port = await freePort();
      const target = await startHub(name, shellVars, port);
      targets.push(target);
      const wired = wire(target);
      await closedLoop(target, wired);
      await drain(wired);
      runs.push({ target, wired, profiler: await profilerAt(port), self: new Map(), messages: 0, cpuNs: 0 });
    }
    for (let slice = 0; slice < slices; slice++) {
      for (const run of runs) {
        await run.profiler.start();
        const measured = await closedLoop(run.target, run.wired, total / slices);
        for (const [name, samples] of await run.profiler.stop()) run.self.set(name, (run.self.get(name) ?? 0) + samples);
        await drain(run.wired);
        run.messages += 2 * measured.trips;
        run.cpuNs += measured.cpuNs;
      }
    }
    for (const run of runs) run.profiler.close();
    console.log(`profile: closed loop, window ${SETTINGS.window}, ${slices} alternating slices of ${total / slices} ms per relay; V8 sampling every ${PROFILE_INTERVAL_US} µs; inspector on, so every figure is inflated: compare within this run`);
    const busyOf = (/** @type {(typeof runs)[number]} */ run) => [...run.self].reduce((sum, [name, samples]) => sum + (name === "(idle)" ? 0 : samples), 0);
    const rows = [["relay", "runtime CPU µs/msg", "isolate JS µs/msg", "JS share"]];
    for (const run of runs) {
      const cpu = run.cpuNs / 1000 / run.messages;
      const js = (busyOf(run) * PROFILE_INTERVAL_US) / run.messages;
      rows.push([run.target.name, fixed(cpu, 2), fixed(js, 2), `${fixed((100 * js) / cpu, 0)}%`]);
    }
    console.log(`\n${table(rows)}`);
    const [hub] = runs;
    if (!hub) return;
    const busy = busyOf(hub);
    const functions = [["hub: function (self time)", "µs/msg", "share of JS"]];
    for (const [name, samples] of [...hub.self].sort((a, b) => b[1] - a[1])) {
      if (name === "(idle)" || samples / busy < 0.005) continue;
      functions.push([name, fixed((samples * PROFILE_INTERVAL_US) / hub.messages, 3), `${fixed((100 * samples) / busy, 1)}%`]);
    }
    console.log(`\n${table(functions)}`);
  } finally {
    for (const target of targets) await target.stop().catch(() => {});
  }
}

// ---- main -----------------------------------------------------------------------------------

const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${RUN_LIMIT_MS / 60_000} min; stopping`);
  process.exit(2);
}, RUN_LIMIT_MS);
watchdog.unref();

/** @type {Target[]} */
const targets = [];
let exitCode = 0;
let pinNoted = false;

/**
 * Runs `measure` with the bench and every relay on CPU 0. On this VM what one message costs,
 * in time and in CPU, moves by up to 2x with whether the scheduler puts the client and the
 * relay on the same core, a placement that sticks for seconds and differs between processes;
 * on one core every relay meets the same placement. Used for the phases compared at the same
 * load (unloaded round trips, the equal-rate open loop), where one relay runs at a time and
 * one core is plenty; the closed loop and the all-at-once phase keep every core.
 * @template T @param {() => Promise<T>} measure @returns {Promise<T>}
 */
async function onOneCpu(measure) {
  const everything = [process.pid, ...targets.flatMap((t) => t.pids)];
  const pinned = pin(everything, "0");
  if (!pinNoted) console.log(pinned ? "unloaded and equal-rate phases: the bench and every relay pinned to CPU 0" : "taskset is missing: phases are not pinned to one CPU");
  pinNoted = true;
  try {
    return await measure();
  } finally {
    if (pinned) pin(everything, `0-${cpus().length - 1}`);
  }
}

if (process.argv.includes("--profile")) {
  await profile();
  process.exit(0);
}

try {
  const started = performance.now();
  targets.push(
    await startHub("hub"),
    await startFloor(),
    await startWsRelay(),
    await startHub("shell", { BENCH_SHELL_SENDER_ID: "0" }),
    await startHub("shell+id", { BENCH_SHELL_SENDER_ID: "1" }),
  );
  const wrangler = createRequire(import.meta.url)("wrangler/package.json").version;
  const workerd = createRequire(createRequire(import.meta.url).resolve("wrangler/package.json"))("@cloudflare/workerd-linux-64/package.json").version;
  console.log(
    `relay benchmark: node ${process.version}, wrangler ${wrangler}, workerd ${workerd}, ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ` +
      `load average ${loadavg().map((l) => l.toFixed(2)).join(" ")} at start`,
  );
  console.log(
    `${SETTINGS.users} clients of one Iota, ${SETTINGS.payloadBytes}-byte payloads, window ${SETTINGS.window}, ${SETTINGS.phaseMs} ms phases, ` +
      `${SETTINGS.rounds} rounds alternating ${targets.map((t) => t.name).join(", ")}, open loop in ${SETTINGS.slices} interleaved slices; servers up in ${fixed((performance.now() - started) / 1000, 1)} s`,
  );
  for (const target of targets) console.log(`  ${target.name}: processes ${target.pids.join(", ")}, RSS ${target.pids.map((pid) => `${Math.round(memoryOf(pid).rssMiB)} MiB`).join(", ")}`);

  const wired = new Map(targets.map((target) => [target, wire(target)]));
  /** @type {Map<Target, Results>} */
  const results = new Map(targets.map((target) => [target, { unloaded: [], closed: [], open: [], together: [] }]));
  // Warm every relay's code paths before anything counts.
  for (const target of targets) {
    const w = /** @type {ReturnType<typeof wire>} */ (wired.get(target));
    await closedLoop(target, w);
    await drain(w);
  }
  let rate = SETTINGS.rate;
  const rows = [["round", "relay", "RTT p50 ms", "p99 ms", "closed rt/s", "CPU µs/msg", "open rt/s", "open p50 ms", "open p99", "CPU µs/msg @rate", "per process", "@rate together", "errors"]];
  for (let round = 1; round <= SETTINGS.rounds; round++) {
    // Each round starts with another relay, so none always runs first (or right after another).
    const order = targets.map((_, i) => /** @type {Target} */ (targets[(i + round - 1) % targets.length]));
    for (const [target, result] of await onOneCpu(() => unloadedInterleaved(order, wired))) results.get(target)?.unloaded.push(result);
    for (const target of order) {
      const w = /** @type {ReturnType<typeof wire>} */ (wired.get(target));
      const result = await closedLoop(target, w);
      await drain(w);
      results.get(target)?.closed.push(result);
    }
    if (rate === 0) {
      const closedRates = targets.map((t) => {
        const c = results.get(t)?.closed.at(-1);
        return c ? (1000 * c.trips) / c.ms : Number.POSITIVE_INFINITY;
      });
      // Well below capacity, so that load from elsewhere does not turn the phase into a queue.
      rate = Math.max(100, Math.round(Math.min(...closedRates) / 4 / 100) * 100);
      console.log(`open-loop rate: ${rate} round trips/s (${2 * rate} relayed messages/s) for every relay, a quarter of the slowest closed loop of round 1`);
    }
    for (const [target, result] of await onOneCpu(() => openInterleaved(order, wired, rate))) results.get(target)?.open.push(result);
    // The same open loop on all of them at once: every relay meets the same load from elsewhere
    // on the machine during the same seconds, the strongest pairing of the CPU figures.
    const together = await Promise.all(order.map((target) => openLoop(target, /** @type {ReturnType<typeof wire>} */ (wired.get(target)), rate)));
    for (const [i, target] of order.entries()) {
      await drain(/** @type {ReturnType<typeof wire>} */ (wired.get(target)));
      const result = together[i];
      if (result) results.get(target)?.together.push(result);
    }
    for (const target of targets) {
      const r = /** @type {Results} */ (results.get(target));
      const [u, c, o, t] = [r.unloaded.at(-1), r.closed.at(-1), r.open.at(-1), r.together.at(-1)];
      if (!u || !c || !o || !t) continue;
      rows.push([
        String(round),
        target.name,
        fixed(median(u.rtts), 3),
        fixed(quantile(u.rtts, 0.99), 3),
        fixed((1000 * c.trips) / c.ms, 0),
        fixed(cpuPerMessage(c), 1),
        fixed((1000 * o.trips) / o.ms, 0),
        fixed(median(o.rtts), 3),
        fixed(quantile(o.rtts, 0.99), 3),
        fixed(cpuPerMessage(o), 1),
        o.cpuByPid.map((ns) => fixed(ns / 1000 / (2 * o.trips), 1)).join(" + "),
        fixed(cpuPerMessage(t), 1),
        String(u.errors + c.errors + o.errors + t.errors),
      ]);
      if (u.errors + c.errors + o.errors + t.errors > 0) exitCode = 1;
    }
  }
  console.log(`\nevery round (rt = round trip = 2 relayed messages; CPU of the relay's own processes from /proc)\n${table(rows)}`);

  const [hub, floor, ws, shell, shellId] = targets.map((t) => /** @type {Results} */ (results.get(t)));
  if (hub && floor && ws && shell && shellId) {
    /** Per-round ratio a/b, then the median over rounds: rounds alternate, so load drift cancels. @param {(p: Phase) => number} f @param {keyof Results} k @param {Results} a @param {Results} b */
    const ratio = (f, k, a, b = /** @type {Results} */ (floor)) => median(a[k].map((p, i) => f(p) / f(/** @type {Phase} */ (b[k][i]))));
    const rtt = (/** @type {Phase} */ p) => median(p.rtts);
    const tput = (/** @type {Phase} */ p) => (1000 * p.trips) / p.ms;
    /** @param {string} label @param {(p: Phase) => number} f @param {keyof Results} k @param {number} digits */
    const row = (label, f, k, digits) => [
      label,
      ...[hub, floor, ws, shell, shellId].map((r) => fixed(median(r[k].map(f)), digits)),
      ...[ratio(f, k, hub), ratio(f, k, ws), ratio(f, k, shell), ratio(f, k, shellId, shell), ratio(f, k, hub, shellId)].map((v) => fixed(v, 2)),
    ];
    const summary = [
      ["median over rounds", "hub", "floor", "ws", "shell", "shell+id", "hub/floor", "ws/floor", "shell/floor", "+id/shell", "hub/+id"],
      row("unloaded RTT p50 ms", rtt, "unloaded", 3),
      row("closed-loop round trips/s", tput, "closed", 0),
      row("closed-loop CPU µs/msg", cpuPerMessage, "closed", 1),
      row(`CPU µs/msg at ${rate} rt/s`, cpuPerMessage, "open", 1),
      row(`CPU µs/msg at ${rate} rt/s, all at once`, cpuPerMessage, "together", 1),
      row(`RTT p50 ms at ${rate} rt/s`, rtt, "open", 3),
    ];
    console.log(`\n${table(summary)}`);
    /** Every round's ratio of the rows the targets are judged on. @param {(p: Phase) => number} f @param {keyof Results} k */
    const rounds = (f, k) => hub[k].map((p, i) => fixed(f(p) / f(/** @type {Phase} */ (floor[k][i])), 2)).join(", ");
    console.log(`\nhub/floor per round: CPU at equal rate ${rounds(cpuPerMessage, "open")}; all at once ${rounds(cpuPerMessage, "together")}; unloaded RTT p50 ${rounds(rtt, "unloaded")}`);
    console.log(`\nload average ${loadavg().map((l) => l.toFixed(2)).join(" ")} at the end`);
  }
} catch (error) {
  console.error("bench failed:", error);
  exitCode = 1;
} finally {
  for (const target of targets) await target.stop().catch(() => {});
  clearTimeout(watchdog);
}
process.exit(exitCode);
