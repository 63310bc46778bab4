#!/usr/bin/env node
// @ts-check
/**
 * The reconnect storm (issue 8, SPEC §12): a deploy disconnects every socket, so the whole
 * network re-identifies at once. S client sockets over H hubs (plus the H Iotas) connect and
 * identify at the same moment, then call members re-join their calls at once. It reports the
 * time until all are identified and, per Durable Object class, how many objects were called
 * and the largest number of calls one object received, counted inside the objects
 * (bench/storm-worker.ts). Expected: no call into the control object for any of it, hubs
 * called only by their own sockets, call joins spread over one user record per member.
 */
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { Peer, startRelay, uuid } from "../test/e2e/harness.mjs";
import { setting } from "./common.mjs";

const SETTINGS = {
  sockets: setting("STORM_SOCKETS", 2_000),
  hubs: setting("STORM_HUBS", 20),
  /** Members of the call re-join storm, in calls of STORM_CALL_SIZE. */
  callMembers: setting("STORM_CALL_MEMBERS", 400),
  callSize: setting("STORM_CALL_SIZE", 4),
};
/** A run that hangs (a server that never starts, a lost reply) is stopped here. */
const RUN_LIMIT_MS = 300_000;
const PROVISION_CONCURRENCY = 64;

/** @typedef {import("../test/e2e/harness.mjs").Relay} Relay */
/** @typedef {Record<string, { objects: number, total: number, max: number }>} Calls */

/**
 * Runs `task` over `items` with at most `limit` at once.
 * @template T
 * @param {T[]} items @param {number} limit @param {(item: T) => Promise<void>} task
 */
async function pooled(items, limit, task) {
  let next = 0;
  const worker = async () => {
    for (let item = items[next++]; item !== undefined; item = items[next++]) await task(item);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** @param {Relay} relay @param {"GET" | "DELETE"} method @returns {Promise<Calls>} */
async function calls(relay, method) {
  const reply = await relay.http("/__bench/calls", { method });
  if (reply.status !== 200) throw new Error(`/__bench/calls answered ${reply.status}`);
  return /** @type {Calls} */ (reply.body);
}

/**
 * Every socket of the storm, so the run can end them all.
 * @type {Peer[]}
 */
const opened = [];

/**
 * Opens a socket from its own client address: each socket stands for another device on the
 * network, and the per-address upgrade limit (SPEC §3) is not what is measured here.
 * @param {Relay} relay @param {string} path @param {number} n
 * @returns {Promise<Peer>}
 */
function open(relay, path, n) {
  const address = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  // closeTimeout as in the harness: the close frame decides, not the later TCP teardown.
  const options = Object.assign({ perMessageDeflate: false, headers: { "CF-Connecting-IP": address } }, { closeTimeout: 2_000 });
  const ws = new WebSocket(`${relay.wsUrl}${path}`, options);
  const peer = new Peer(ws);
  opened.push(peer);
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(peer));
    ws.once("error", reject);
    ws.once("unexpected-response", (_request, response) => {
      reject(new Error(`upgrade of ${path} answered HTTP ${response.statusCode}`));
      ws.terminate();
    });
  });
}

/** Numbers the sockets, each one's client address. */
let opens = 0;

/**
 * Opens a socket and sends its identification as soon as it is open; resolves when the
 * reply is in (rejects on a refusal).
 * @param {Relay} relay @param {string} path @param {Record<string, unknown>} data
 * @returns {Promise<Peer>}
 */
async function identified(relay, path, data) {
  const peer = await open(relay, path, opens++);
  const reply = await peer.request({ id: uuid(), type: "identification", data });
  if (reply.type !== "identification_response" || (reply.data && reply.data.accepted === false)) {
    throw new Error(`identification on ${path} answered ${reply.type}`);
  }
  return peer;
}

/**
 * A storm: every task starts at once; the time until the last one is done.
 * @param {(() => Promise<Peer>)[]} tasks
 */
async function storm(tasks) {
  const started = performance.now();
  const peers = await Promise.all(tasks.map((task) => task()));
  return { ms: performance.now() - started, peers };
}

/** @param {string} title @param {Calls} counted */
function printCalls(title, counted) {
  console.log(`\n${title}`);
  console.log("class        objects called   calls in all   most calls to one object");
  for (const [name, { objects, total, max }] of Object.entries(counted)) {
    console.log(`${name.padEnd(12)} ${String(objects).padStart(14)} ${String(total).padStart(14)} ${String(max).padStart(26)}`);
  }
}

async function main() {
  const { sockets, hubs, callMembers, callSize } = SETTINGS;
  if (callMembers > sockets) throw new Error("STORM_CALL_MEMBERS may not exceed STORM_SOCKETS");
  // Limits sized for one machine playing the whole network: the storm measures the
  // directory's shape, not the per-socket rate limits or the unidentified-socket cap.
  const relay = await startRelay({
    entrypoint: fileURLToPath(new URL("./storm-worker.ts", import.meta.url)),
    vars: { MAX_UNIDENTIFIED_PER_OBJECT: String(sockets), IDENTIFY_TIMEOUT_MS: "120000" },
  });
  try {
    console.log(`storm: ${sockets} client sockets over ${hubs} hubs (+${hubs} Iotas), ${callMembers} call members in calls of ${callSize}`);
    const provisionStarted = performance.now();
    /** @type {import("../test/e2e/harness.mjs").Iota[]} */
    const iotas = [];
    for (let i = 0; i < hubs; i++) iotas.push(await relay.createIota());
    /** @type {import("../test/e2e/harness.mjs").User[]} */
    const users = [];
    await pooled(
      Array.from({ length: sockets }, (_, i) => i),
      PROVISION_CONCURRENCY,
      async (i) => {
        const iota = iotas[i % hubs];
        if (iota) users.push(await relay.createUser(iota));
      },
    );
    console.log(`provisioned through the admin API in ${((performance.now() - provisionStarted) / 1000).toFixed(1)} s`);

    await calls(relay, "DELETE");
    const identify = await storm([
      ...iotas.map((iota) => () => identified(relay, `/ws/iota/${iota.id}`, { iota_id: iota.id, user_ids: "", private_key_hash: iota.keyHash })),
      ...users.map((user) => () => identified(relay, `/ws/client/${user.iotaId}`, { iota_id: user.iotaId, user_id: user.id, private_key_hash: user.keyHash })),
    ]);
    const identifyCalls = await calls(relay, "GET");
    console.log(`\n${identify.peers.length} sockets identified in ${identify.ms.toFixed(0)} ms`);
    printCalls("calls received during the identification storm", identifyCalls);

    // The call members join once, leave (as a deploy would end their sockets), then re-join at once.
    const members = users.slice(0, callMembers);
    const callIds = Array.from({ length: Math.ceil(callMembers / callSize) }, () => uuid());
    const joinAll = () =>
      storm(
        members.map((user, i) => () => {
          const callId = callIds[Math.floor(i / callSize)] ?? "";
          return identified(relay, `/ws/call/${callId}`, { call_id: callId, user_id: user.id, private_key_hash: user.keyHash });
        }),
      );
    const first = await joinAll();
    for (const peer of first.peers) peer.close(1000, "deploy");
    await Promise.all(first.peers.map((peer) => peer.closed));
    await calls(relay, "DELETE");
    const rejoin = await joinAll();
    const rejoinCalls = await calls(relay, "GET");
    console.log(`\n${rejoin.peers.length} call members re-joined ${callIds.length} calls in ${rejoin.ms.toFixed(0)} ms`);
    printCalls("calls received during the call re-join storm", rejoinCalls);

    const directoryCalls = (identifyCalls.Directory?.total ?? 0) + (rejoinCalls.Directory?.total ?? 0);
    console.log(`\ncalls into the control object (Directory) during both storms: ${directoryCalls} (expected 0)`);
    process.exitCode = directoryCalls === 0 ? 0 : 1;
  } finally {
    for (const peer of opened) peer.ws.terminate();
    await relay.stop();
  }
}

const watchdog = setTimeout(() => {
  console.error(`storm: no result after ${RUN_LIMIT_MS / 1000} s; stopping`);
  process.exit(2);
}, RUN_LIMIT_MS);
watchdog.unref();

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
