#!/usr/bin/env node
// @ts-check
/**
 * `npm run bench:flood`: what a flooding client costs its neighbour on the same hub (issue 10,
 * SPEC §9 r2), against a real local server with the production limits (wrangler.toml as is:
 * buckets, flood close, upgrade admission).
 *
 * One hub, one Iota, two users. The neighbour measures round trips (a JSON `ping` answered
 * `pong` by the hub, one in flight, 50 a second) first alone (baseline), then while the flooder, another
 * client of the same hub, sends junk frames as fast as its socket takes them and reconnects
 * (and identifies again) whenever it is closed, as an attacker would. The added latency is
 * the flood phase's p50/p99 minus the baseline's, measured in the same run on the same machine.
 * Sockets connect to the Worker's runtime directly, past wrangler's local dev proxy (a Node
 * process production does not have, which would spend this machine's CPU forwarding the
 * flood), as bench/relay.mjs does.
 *
 * Settings (env): FLOOD_PHASE_MS (default 10 000) per phase, FLOOD_BATCH (default 500)
 * frames per write burst.
 */
import { performance } from "node:perf_hooks";
import { Peer, startRelay, uuid } from "../test/e2e/harness.mjs";
import { quantile, setting } from "./common.mjs";
import { directUrl, workerdChildren } from "./proc.mjs";

const PHASE_MS = setting("FLOOD_PHASE_MS", 10_000);
const BATCH = setting("FLOOD_BATCH", 500);
/** Bytes the flooder lets wait in its socket's send buffer, about what a kernel would hold. */
const MAX_BUFFERED = 256 * 1024;

/** The neighbour's pace: 50 pings/s, half its rate limit, so only the flood can slow it. */
const PING_INTERVAL_MS = 20;

/**
 * Round trips of the neighbour for `ms`, one in flight, one every PING_INTERVAL_MS.
 * @param {import("../test/e2e/harness.mjs").Peer} neighbour
 * @param {number} ms
 */
async function roundTrips(neighbour, ms) {
  /** @type {number[]} */
  const rtts = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const id = uuid();
    const start = performance.now();
    const reply = await neighbour.request({ id, type: "ping", data: {} });
    if (reply.id !== id || reply.type !== "pong") throw new Error(`the neighbour's ping was answered ${JSON.stringify(reply)}`);
    const rtt = performance.now() - start;
    rtts.push(rtt);
    if (rtt < PING_INTERVAL_MS) await new Promise((resolve) => setTimeout(resolve, PING_INTERVAL_MS - rtt));
  }
  return rtts;
}

/**
 * An identified client socket of `user`, straight to the runtime.
 * @param {string} ws the runtime's ws:// base URL
 * @param {import("../test/e2e/harness.mjs").User} user
 */
async function connectClient(ws, user) {
  const peer = await Peer.open(`${ws}/ws/client/${user.iotaId}`);
  const data = { iota_id: user.iotaId, user_id: user.id, private_key_hash: user.keyHash };
  const reply = await peer.request({ id: uuid(), type: "identification", data });
  if (reply.data?.accepted !== true) throw new Error(`identification answered ${JSON.stringify(reply)}`);
  return peer;
}

/**
 * The attacker: identify, write junk as fast as the socket takes it, reconnect when closed.
 * @param {string} ws
 * @param {import("../test/e2e/harness.mjs").User} user
 * @param {() => boolean} running
 */
async function flood(ws, user, running) {
  const stats = { sessions: 0, frames: 0, closes: /** @type {Record<string, number>} */ ({}), refused: 0 };
  const junk = JSON.stringify({ type: "junk", data: { pad: "x".repeat(64) } });
  while (running()) {
    let peer;
    try {
      peer = await connectClient(ws, user);
    } catch {
      // Upgrade admission (429) or a refusal: wait as a throttled attacker must.
      stats.refused++;
      await new Promise((resolve) => setTimeout(resolve, 250));
      continue;
    }
    stats.sessions++;
    let open = true;
    void peer.closed.then(({ code }) => {
      open = false;
      stats.closes[code] = (stats.closes[code] ?? 0) + 1;
    });
    peer.stream(() => {});
    while (open && running()) {
      // As fast as the connection takes it: a real sender is held back only by TCP, so writes
      // pause while more than MAX_BUFFERED bytes wait to go out.
      if (peer.ws.bufferedAmount > MAX_BUFFERED) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      for (let i = 0; i < BATCH; i++) peer.send(junk);
      stats.frames += BATCH;
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (open) peer.close();
    await peer.closed;
  }
  return stats;
}

const before = new Set(workerdChildren());
const relay = await startRelay();
/** @type {Peer[]} */
const opened = [];
/** @type {NodeJS.Timeout[]} */
const timers = [];
try {
  const iota = await relay.createIota();
  const neighbourUser = await relay.createUser(iota);
  const flooderUser = await relay.createUser(iota);
  // Read only after a first request: wrangler may start a runtime process lazily.
  const pids = workerdChildren().filter((pid) => !before.has(pid));
  const ws = directUrl(pids, new URL(relay.httpUrl)).href.replace(/^http/, "ws").replace(/\/$/, "");
  const iotaPeer = await Peer.open(`${ws}/ws/iota/${iota.id}`);
  opened.push(iotaPeer);
  const userIds = `${neighbourUser.id},${flooderUser.id},`;
  const identified = await iotaPeer.request({ id: uuid(), type: "identification", data: { iota_id: iota.id, user_ids: userIds, private_key_hash: iota.keyHash } });
  if (identified.type !== "identification_response") throw new Error(`Iota identification answered ${JSON.stringify(identified)}`);
  // The Iota only listens; whatever reaches it is dropped here. Its keep-alives keep the idle
  // timeout (SPEC §9 r2) from closing it during long phases.
  iotaPeer.stream(() => {});
  const keepAlive = setInterval(() => iotaPeer.send("ping"), 30_000);
  timers.push(keepAlive);
  const neighbour = await connectClient(ws, neighbourUser);
  opened.push(neighbour);

  await roundTrips(neighbour, 1_000);
  const baseline = await roundTrips(neighbour, PHASE_MS);
  let running = true;
  const attacker = flood(ws, flooderUser, () => running);
  const flooded = await roundTrips(neighbour, PHASE_MS);
  running = false;
  const stats = await attacker;

  const row = (/** @type {string} */ name, /** @type {number[]} */ rtts) =>
    `${name.padEnd(9)} n=${String(rtts.length).padStart(6)}  p50 ${quantile(rtts, 0.5).toFixed(2).padStart(7)} ms  p99 ${quantile(rtts, 0.99).toFixed(2).padStart(7)} ms`;
  console.log(row("baseline", baseline));
  console.log(row("flood", flooded));
  console.log(
    `added     p50 ${(quantile(flooded, 0.5) - quantile(baseline, 0.5)).toFixed(2)} ms  p99 ${(quantile(flooded, 0.99) - quantile(baseline, 0.99)).toFixed(2)} ms (target: p99 <= 50 ms)`,
  );
  console.log(
    `flooder   ${stats.frames} frames written in ${stats.sessions} sessions; closes by code ${JSON.stringify(stats.closes)}; reconnects refused ${stats.refused}`,
  );
} finally {
  for (const timer of timers) clearInterval(timer);
  for (const peer of opened) peer.terminate();
  await relay.stop();
}
