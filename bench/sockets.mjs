#!/usr/bin/env node
// @ts-check
/**
 * Connection scale (SPEC §12): one hub holding BENCH_SOCKETS (default 10,000) identified client
 * sockets on a real local Omikron, with zero errors, and the runtime's memory before and after.
 * `node bench/sockets.mjs` (also part of `npm run bench`; see bench/README.md).
 *
 * A process may hold at most 20,000 descriptors here, so the TCP clients are spread over
 * BENCH_SOCKET_PROCESSES child processes (this file again, with `--child`), each connecting
 * and identifying its share through the peer library (src/peer) with BENCH_SOCKET_CONCURRENCY
 * attempts in flight (below MAX_UNIDENTIFIED_PER_OBJECT). The runtime itself holds two
 * descriptors per accepted TCP socket, so it fits ~9,900 of them beside its own; the rest of
 * the sockets asked for are opened inside the runtime (bench/sockets-worker.ts: the Worker's
 * own upgrade route, the same identification, no descriptor). The sockets belong to
 * BENCH_SOCKET_USERS users with as many devices each (MAX_DEVICES_PER_USER raised to fit), and
 * each socket presents its own CF-Connecting-IP, as 10,000 real clients would. Once all are
 * identified, the Iota sends one frame to every user, and every device must receive it: the
 * sockets are served, not just open.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { setting } from "./common.mjs";
import { directUrl, memoryOf, workerdChildren } from "./proc.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));

const TARGET = setting("BENCH_SOCKETS", 10_000);

/**
 * The runtime process holds every socket, and workerd keeps two descriptors per accepted TCP
 * socket (the same socket, duplicated); a process may open as many as its hard limit allows,
 * which it inherits from here. What fits beside the runtime's own ~100 descriptors and the
 * Iota's socket is as many as can be held over TCP on this machine.
 */
function descriptorBudget() {
  const line = readFileSync("/proc/self/limits", "utf8").match(/^Max open files\s+\S+\s+(\d+|unlimited)/m);
  const hard = line?.[1] === "unlimited" || !line?.[1] ? Number.POSITIVE_INFINITY : Number(line[1]);
  return Math.floor((hard - 200) / 2) - 1;
}

/** BENCH_SOCKETS_TCP caps the TCP share (to try the in-runtime path on a machine without the limit). */
const OVER_TCP = Math.min(TARGET, descriptorBudget(), setting("BENCH_SOCKETS_TCP", Number.POSITIVE_INFINITY));
const IN_RUNTIME = TARGET - OVER_TCP;
/** In-runtime sockets per driving request. */
const IN_RUNTIME_CHUNK = 500;
const USERS = setting("BENCH_SOCKET_USERS", 100);
const PROCESSES = setting("BENCH_SOCKET_PROCESSES", 4);
const CONCURRENCY = setting("BENCH_SOCKET_CONCURRENCY", 32);

/** @typedef {{ id: string, keyHash: string, iotaId: string }} User */

/**
 * Socket `index`'s own client address, so per-address upgrade limits see 10,000 clients.
 * @param {number} index
 */
const addressOf = (index) => `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`;

if (process.argv.includes("--child")) await child();
else await main();

// ---- a child: its share of the clients ------------------------------------------------------

async function child() {
  const { connectClient } = await import("../src/peer/index.ts");
  /** @type {{ url: string, users: User[], first: number, count: number }} */
  const job = JSON.parse(process.env.BENCH_SOCKET_JOB ?? "{}");
  /** @type {{ close(): unknown }[]} */
  const peers = [];
  let errors = 0;
  let received = 0;
  let next = job.first;
  const end = job.first + job.count;
  const say = (/** @type {Record<string, unknown>} */ message) => process.stdout.write(`${JSON.stringify(message)}\n`);

  const one = async () => {
    for (let index = next++; index < end; index = next++) {
      const user = job.users[index % job.users.length];
      if (!user) throw new Error("no users");
      const address = addressOf(index);
      class FromAddress extends WebSocket {
        constructor(/** @type {string} */ url) {
          super(url, { perMessageDeflate: false, headers: { "CF-Connecting-IP": address } });
        }
      }
      try {
        const peer = await connectClient({
          url: job.url,
          iotaId: user.iotaId,
          userId: user.id,
          privateKeyHash: user.keyHash,
          reconnect: false,
          keepAliveMs: 0,
          WebSocket: /** @type {import("../src/peer/index.ts").SocketConstructor} */ (/** @type {unknown} */ (FromAddress)),
        });
        peer.on("message", (frame) => {
          if (frame.type === "bench_fanout") received++;
        });
        peer.on("disconnected", () => errors++);
        peers.push(peer);
      } catch (error) {
        errors++;
        if (errors <= 3) process.stderr.write(`socket ${index}: ${error instanceof Error ? error.message : String(error)}\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, one));
  say({ identified: peers.length, errors });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line === "count") say({ received, errors });
    if (line === "close") {
      await Promise.all(peers.map((peer) => Promise.resolve(peer.close()).catch(() => {})));
      say({ closed: peers.length });
      process.exit(0);
    }
  }
}

// ---- in the runtime: the sockets beyond the descriptor limit --------------------------------

/**
 * Opens `count` sockets from inside the runtime (bench/sockets-worker.ts) and follows its
 * report; `stop()` drops the request, and its sockets with it.
 * @param {string} url @param {User[]} users @param {number} first @param {number} count
 */
function inRuntime(url, users, first, count) {
  const abort = new AbortController();
  /** @type {Record<string, number>} */
  let latest = {};
  /** @type {(line: Record<string, number>) => void} */
  let onIdentified = () => {};
  const identified = new Promise((resolve) => (onIdentified = resolve));
  const reading = (async () => {
    const response = await fetch(new URL("/__bench/sockets", url), {
      method: "POST",
      body: JSON.stringify({ users, addresses: Array.from({ length: count }, (_, i) => addressOf(first + i)), first, count, concurrency: CONCURRENCY }),
      signal: abort.signal,
    });
    if (!response.ok || !response.body) throw new Error(`in-runtime sockets answered ${response.status}`);
    let buffered = "";
    for await (const chunk of response.body.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      for (let end = buffered.indexOf("\n"); end >= 0; end = buffered.indexOf("\n")) {
        const line = JSON.parse(buffered.slice(0, end));
        buffered = buffered.slice(end + 1);
        if ("identified" in line) onIdentified(line);
        latest = line;
      }
    }
  })().catch((error) => {
    if (!abort.signal.aborted) {
      process.stderr.write(`in-runtime sockets: ${error instanceof Error ? error.message : String(error)}\n`);
      onIdentified({ identified: 0, errors: count });
      latest = { received: 0, errors: count };
    }
  });
  return {
    /** @returns {Promise<Record<string, number>>} */
    next: () => identified,
    count: () => latest,
    stop: async () => {
      abort.abort();
      await reading;
    },
  };
}

// ---- the parent: the server, the Iota, the report --------------------------------------------

async function main() {
  const { startRelay } = await import("../test/e2e/harness.mjs");
  const started = performance.now();
  const devices = Math.ceil(TARGET / USERS);
  if (IN_RUNTIME > 0) {
    const limit = readFileSync("/proc/self/limits", "utf8").match(/^Max open files\s+(\S+)/m)?.[1];
    const why = OVER_TCP < descriptorBudget() ? "BENCH_SOCKETS_TCP" : `this process may open ${limit} files and workerd holds 2 per TCP socket`;
    console.log(`${OVER_TCP} of the ${TARGET} sockets connect over TCP and ${IN_RUNTIME} from inside the runtime (${why})`);
  }
  const relay = await startRelay({
    entrypoint: fileURLToPath(new URL("./sockets-worker.ts", import.meta.url)),
    vars: {
      MAX_DEVICES_PER_USER: String(devices),
      RATE_LIMIT_PER_SEC: "1000000",
      RATE_LIMIT_BURST: "1000000",
    },
  });
  /** @type {{ stdin: NodeJS.WritableStream, next: () => Promise<Record<string, number>> }[]} */
  const children = [];
  /** @type {ReturnType<typeof inRuntime>[]} */
  const drivers = [];
  let failed = false;
  try {
    const iota = await relay.createIota();
    /** @type {User[]} */
    const users = [];
    for (let i = 0; i < USERS; i++) users.push(await relay.createUser(iota));
    const { peer: iotaPeer } = await relay.connectIota(iota, users.map((user) => `${user.id},`).join(""));
    const pids = workerdChildren();
    // Past wrangler's dev proxy, which holds four descriptors per socket (20,000 allowed).
    const url = directUrl(pids, new URL(relay.httpUrl)).href;
    let connectedPushes = 0;
    iotaPeer.stream((text) => {
      if (text.includes('"type":"client_connected"')) connectedPushes++;
    });
    const before = pids.map(memoryOf);
    console.log(`server up, ${USERS} users provisioned in ${((performance.now() - started) / 1000).toFixed(1)} s; workerd ${pids.join(", ")}`);

    const connecting = performance.now();
    const share = Math.ceil(OVER_TCP / PROCESSES);
    for (let p = 0; p < PROCESSES; p++) {
      const first = p * share;
      const count = Math.min(share, OVER_TCP - first);
      if (count <= 0) break;
      const job = JSON.stringify({ url, users, first, count });
      const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), "--child"], {
        env: { ...process.env, BENCH_SOCKET_JOB: job },
        stdio: ["pipe", "pipe", "inherit"],
      });
      const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
      children.push({
        stdin: proc.stdin,
        next: async () => JSON.parse(String((await lines.next()).value ?? "{}")),
      });
    }
    const overTcp = await Promise.all(children.map((c) => c.next()));
    const tcpS = (performance.now() - connecting) / 1000;
    for (let first = OVER_TCP; first < TARGET; first += IN_RUNTIME_CHUNK) {
      drivers.push(inRuntime(url, users, first, Math.min(IN_RUNTIME_CHUNK, TARGET - first)));
    }
    const ready = [...overTcp, ...(await Promise.all(drivers.map((d) => d.next())))];
    /** @param {Record<string, number>[]} lines @param {string} key */
    const sum = (lines, key) => lines.reduce((total, line) => total + (line[key] ?? 0), 0);
    const identified = sum(ready, "identified");
    const tcpIdentified = sum(overTcp, "identified");
    const connectErrors = sum(ready, "errors");
    const connectS = (performance.now() - connecting) / 1000;
    // Let the runtime settle (pushes, GC) before reading its memory.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const after = pids.map(memoryOf);

    for (const user of users) iotaPeer.send(JSON.stringify({ id: `fan-${user.id}`, type: "bench_fanout", receiver_id: user.id, data: {} }));
    /** @type {Record<string, number>[]} */
    let counts = [];
    const until = performance.now() + 30_000;
    let received = 0;
    do {
      await new Promise((resolve) => setTimeout(resolve, 500));
      for (const c of children) c.stdin.write("count\n");
      counts = [...(await Promise.all(children.map((c) => c.next()))), ...drivers.map((d) => d.count())];
      received = sum(counts, "received");
    } while (received < identified && performance.now() < until);
    const laterErrors = sum(counts, "errors");

    console.log(
      `\n${identified} of ${TARGET} client sockets identified on one hub in ${connectS.toFixed(1)} s, ${connectErrors} errors: ` +
        `${tcpIdentified} over TCP in ${tcpS.toFixed(1)} s (${children.length} client processes, ${CONCURRENCY} attempts in flight each), ${identified - tcpIdentified} from inside the runtime`,
    );
    console.log(`client_connected pushes to the Iota: ${connectedPushes} (users: ${USERS})`);
    console.log(`one frame from the Iota to each user: ${received} of ${identified} devices received it; errors since: ${laterErrors}`);
    pids.forEach((pid, i) => {
      const b = before[i];
      const a = after[i];
      if (!a || !b) return;
      console.log(
        `workerd ${pid}: RSS ${b.rssMiB.toFixed(0)} → ${a.rssMiB.toFixed(0)} MiB (${(((a.rssMiB - b.rssMiB) * 1024) / Math.max(1, identified)).toFixed(1)} KiB per socket), descriptors ${b.fds} → ${a.fds}`,
      );
    });
    failed = identified !== TARGET || connectErrors > 0 || laterErrors > 0 || received !== identified || connectedPushes !== USERS;
    console.log(failed ? "\nsockets: FAILED" : "\nsockets: all identified and served, zero errors");
  } finally {
    for (const c of children) c.stdin.write("close\n");
    await Promise.all(children.map((c) => c.next().catch(() => ({}))));
    await Promise.all(drivers.map((d) => d.stop()));
    await relay.stop();
  }
  process.exit(failed ? 1 : 0);
}
