/**
 * The peer library in a real browser (issue 11): Debian's Chromium, headless, driven by
 * playwright-core, against the real local Omikron. A page loads the library as bundled for
 * outside consumers (.ci/build-peer.mjs) from a local HTTP server, so it connects with a real
 * Origin header, as a web client would. (a) A page identifies as a client and exchanges frames
 * with an Iota in Node. (b) Two pages join one call and open an RTCPeerConnection data channel
 * with the call room as their only signalling path, then exchange a message over it.
 *
 * `.ci/run` installs chromium when it is missing and fails if it cannot, so CI never skips
 * these; elsewhere they skip with a loud message when no browser is installed.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundlePeer } from "../../.ci/build-peer.mjs";
import { connectIota } from "../../src/peer/index.ts";
import { type Relay, startRelay, uuid } from "../e2e/harness.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const available = existsSync(CHROMIUM);
if (!available) {
  console.error(`\n!!! ${CHROMIUM} not found: the browser tests are SKIPPED. Install it: apt-get install -y chromium !!!\n`);
}

let relay: Relay;
let browser: Browser;
let pages: Server;
let pagesUrl: string;

/** Serves the page, its script and the peer bundle on 127.0.0.1, port 0. */
async function servePages(): Promise<Server> {
  const files: Record<string, string> = {
    "/": '<!doctype html><meta charset="utf-8"><title>omikron peer</title><script type="module" src="/page.js"></script>',
    "/page.js": await readFile(new URL("./page.js", import.meta.url), "utf8"),
    "/peer.js": await bundlePeer(),
  };
  const server = createServer((request, response) => {
    const body = files[request.url ?? ""];
    response.writeHead(body === undefined ? 404 : 200, {
      "content-type": request.url === "/" ? "text/html" : "text/javascript",
    });
    response.end(body ?? "");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

async function openPage() {
  const page = await (await browser.newContext()).newPage();
  page.on("pageerror", (error) => console.error(`page error: ${error.message}`));
  await page.goto(pagesUrl);
  await page.waitForFunction("typeof window.joinCallWithPeerConnection === 'function'");
  return page;
}

describe.skipIf(!available)("in Chromium", () => {
  beforeAll(async () => {
    [relay, pages, browser] = await Promise.all([
      startRelay(),
      servePages(),
      chromium.launch({
        executablePath: CHROMIUM,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--no-first-run",
          // Offline WebRTC: plain host candidates, on loopback too, instead of mDNS names.
          "--disable-features=WebRtcHideLocalIpsWithMdns",
          "--allow-loopback-in-peer-connection",
        ],
      }),
    ]);
    pagesUrl = `http://127.0.0.1:${(pages.address() as AddressInfo).port}/`;
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (pages ? pages.close(resolve) : resolve(undefined)));
    if (relay) await relay.stop();
  });

  it("identifies a page as a client and exchanges frames with a Node Iota", async () => {
    const iota = await relay.createIota();
    const alice = await relay.createUser(iota);
    const iotaPeer = await connectIota({ url: relay.wsUrl, iotaId: iota.id, userIds: [alice.id], privateKeyHash: iota.keyHash, keepAliveMs: 0 });
    iotaPeer.on("message", (frame) => {
      iotaPeer.send({ id: frame.id, type: "chats", receiver_id: frame.sender_id, data: { asked: frame.data } });
    });
    try {
      const page = await openPage();
      const connected = iotaPeer.once("client_connected");
      const options = { url: relay.wsUrl, iotaId: iota.id, userId: alice.id, keyHash: alice.keyHash };
      expect(await page.evaluate(`runClient(${JSON.stringify(options)})`)).toEqual({ acceppted: true, accepted: true, iota_online: true });
      expect((await connected).data).toEqual({ user_id: alice.id });

      const reply = await page.evaluate(`client.request({ type: "get_chats", data: { limit: 3 } })`);
      expect(reply).toMatchObject({ type: "chats", sender_id: iota.id, receiver_id: alice.id, data: { asked: { limit: 3 } } });

      iotaPeer.send({ type: "message_send", receiver_id: alice.id, data: { text: "hi from Node" } });
      await page.waitForFunction("window.received.length > 0");
      expect(await page.evaluate("window.received")).toEqual([
        { id: expect.any(String), type: "message_send", receiver_id: alice.id, data: { text: "hi from Node" }, sender_id: iota.id },
      ]);
    } finally {
      await iotaPeer.close();
    }
  });

  it("opens a WebRTC data channel between two pages signalled only through a call room", async () => {
    const callId = uuid();
    const alice = await relay.createUser(await relay.createIota());
    const bob = await relay.createUser(await relay.createIota());
    const [alicePage, bobPage] = await Promise.all([openPage(), openPage()]);
    const join = (user: typeof alice, remote: typeof alice) =>
      `joinCallWithPeerConnection(${JSON.stringify({ url: relay.wsUrl, callId, userId: user.id, keyHash: user.keyHash, remoteId: remote.id })})`;

    expect(await alicePage.evaluate(join(alice, bob))).toEqual([alice.id]);
    expect(await bobPage.evaluate(join(bob, alice))).toEqual([alice.id, bob.id].sort());

    const [echo, answered] = await Promise.all([alicePage.evaluate(`offer("hello over WebRTC")`), bobPage.evaluate("window.answered")]);
    expect(answered).toEqual({ message: "hello over WebRTC", signalling: ["webrtc_ice", "webrtc_sdp"] });
    expect(echo).toBe("echo: hello over WebRTC");
  });
});
