/**
 * Runs one way of checking a frame `n` times per request, so bench/codec.mjs can read the
 * CPU it took from /proc (the Workers runtime's clock stands still within a request, so it
 * cannot be timed from inside).
 */
import { EnvelopeSchema, decode, withSenderId } from "../../src/protocol.ts";

const SENDER = "0b6f3a5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
const pad = "x".repeat(64);
const FRAMES = {
  up: `{"id":"5c1e4a8e-8f0c-4a34-9d57-3a1f0c2b9e11","type":"bench","data":{"pad":"${pad}"}}`,
  down: `{"id":"5c1e4a8e-8f0c-4a34-9d57-3a1f0c2b9e11","type":"bench","receiver_id":"${SENDER}","data":{"pad":"${pad}"}}`,
};

/** What each way does with a frame a client sends: check it and produce the relayed text. */
const WAYS: Record<string, (text: string) => unknown> = {
  none: (text) => text.length,
  scanner: (text) => {
    const decoded = decode(text);
    return decoded.ok ? withSenderId(decoded, SENDER) : null;
  },
  "json+zod": (text) => {
    const value: unknown = JSON.parse(text);
    return EnvelopeSchema.safeParse(value).success ? `${text.slice(0, text.lastIndexOf("}"))},"sender_id":"${SENDER}"}` : null;
  },
  json: (text) => JSON.parse(text),
};

export default {
  fetch(request: Request): Response {
    const url = new URL(request.url);
    const way = WAYS[url.searchParams.get("way") ?? ""];
    const text = FRAMES[(url.searchParams.get("frame") ?? "up") as keyof typeof FRAMES];
    const n = Number(url.searchParams.get("n") ?? "0");
    if (!way || !text) return new Response("unknown way or frame", { status: 400 });
    let sink = 0;
    for (let i = 0; i < n; i++) if (way(text)) sink++;
    return new Response(String(sink));
  },
} satisfies ExportedHandler;
