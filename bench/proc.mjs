// @ts-check
/**
 * What the benchmarks read from /proc about the relays they start: which runtime processes are
 * this process's children, their CPU time, memory, descriptors and listening ports. Linux only.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";

/** This process's workerd children (wrangler starts one for its proxy and one for the Worker). */
export function workerdChildren() {
  /** @type {number[]} */
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === process.pid && comm.startsWith("workerd")) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** CPU time (ns) of a process over all its threads: the first field of each task's schedstat. */
export function cpuNs(/** @type {number} */ pid) {
  let total = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return total;
}

/** Resident memory (MiB) and open descriptors of a process. */
export function memoryOf(/** @type {number} */ pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(status.match(/^VmRSS:\s+(\d+)/m)?.[1] ?? Number.NaN);
  return { rssMiB: rss / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
}

/** TCP ports a process listens on (IPv4), from its socket descriptors and /proc/net/tcp. */
export function listeningPorts(/** @type {number} */ pid) {
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      const inode = link.match(/^socket:\[(\d+)\]$/)?.[1];
      if (inode) inodes.add(inode);
    } catch {
      // Closed meanwhile.
    }
  }
  /** @type {number[]} */
  const ports = [];
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[3] === "0A" && inodes.has(fields[9])) ports.push(Number.parseInt(fields[1]?.split(":")[1] ?? "", 16));
  }
  return ports;
}

/**
 * The Worker's own runtime behind wrangler's dev proxy: the listening port of these processes
 * that is not the proxy's. Connecting there skips the proxy, which costs four descriptors and
 * its own CPU per socket locally, and does not exist in production.
 * @param {number[]} pids @param {URL} proxyUrl
 */
export function directUrl(pids, proxyUrl) {
  for (const pid of pids) {
    for (const port of listeningPorts(pid)) if (port !== Number(proxyUrl.port)) return new URL(`http://127.0.0.1:${port}`);
  }
  return proxyUrl;
}

/**
 * Sets the CPUs every thread of these processes may run on (`taskset -a`), e.g. "0" or "0-1".
 * Answers false when that is not possible here (no taskset), so the caller can say so.
 * @param {number[]} pids @param {string} cpus
 */
export function pin(pids, cpus) {
  for (const pid of pids) {
    const result = spawnSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" });
    if (result.error || result.status !== 0) return false;
  }
  return true;
}
