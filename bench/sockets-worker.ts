/**
 * The Worker of `bench/sockets.mjs`: the real Worker and classes, plus one bench-only route
 * that opens client sockets from inside the runtime. A local process may hold 20,000
 * descriptors and workerd holds two per accepted TCP socket, so at most ~9,900 clients fit
 * over TCP; the rest of the 10,000 are opened here, through the Worker's own upgrade route
 * (`app.fetch`, so the same path check, admission and hand-over to the hub as a TCP client),
 * and identify on the same hub with the same frame. An in-runtime socket holds no descriptor.
 * Bench-only: production's entry is src/index.ts.
 *
 * `POST /__bench/sockets` with `{ users, addresses, first, count, concurrency }` answers a stream of
 * NDJSON lines: `{"identified":n,"errors":e}` once every socket has tried, then
 * `{"received":r,"errors":e}` every 250 ms, until the caller drops the request, which ends
 * its sockets with it.
 */
import type { Env } from "../src/env";
import app, { CallRoom, Directory, Hub, UserRecord } from "../src/index";

export { CallRoom, Directory, Hub, UserRecord };

interface User {
  id: string;
  keyHash: string;
  iotaId: string;
}

interface Job {
  users: User[];
  /** Each socket's CF-Connecting-IP, from socket `first` on. */
  addresses: string[];
  first: number;
  count: number;
  concurrency: number;
}

async function openClient(user: User, address: string, env: Env, ctx: ExecutionContext, onFanout: () => void, onLost: () => void): Promise<WebSocket> {
  const request = new Request(`http://omikron.bench/ws/client/${user.iotaId}`, {
    headers: { Upgrade: "websocket", "CF-Connecting-IP": address },
  });
  const response = await app.fetch(request, env, ctx);
  const ws = response.webSocket;
  if (!ws) throw new Error(`upgrade answered ${response.status}`);
  ws.accept();
  const answer = new Promise<void>((resolve, reject) => {
    let identified = false;
    ws.addEventListener("message", (event) => {
      const text = typeof event.data === "string" ? event.data : "";
      if (!identified) {
        identified = true;
        const reply = JSON.parse(text) as { type?: string; data?: { accepted?: boolean } };
        if (reply.type === "identification_response" && reply.data?.accepted === true) resolve();
        else reject(new Error(`identification answered ${text.slice(0, 200)}`));
      } else if (text.includes('"type":"bench_fanout"')) onFanout();
    });
    ws.addEventListener("close", (event) => {
      if (identified) onLost();
      else reject(new Error(`closed ${event.code} before identifying`));
    });
  });
  ws.send(
    JSON.stringify({
      id: crypto.randomUUID(),
      type: "identification",
      log: { message: "Client identifying", log_level: 0 },
      data: { iota_id: user.iotaId, user_id: user.id, private_key_hash: user.keyHash },
    }),
  );
  await answer;
  return ws;
}

function drive(job: Job, env: Env, ctx: ExecutionContext): Response {
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const encoder = new TextEncoder();
  const say = (line: Record<string, number>) => writer.write(encoder.encode(`${JSON.stringify(line)}\n`));
  const sockets: WebSocket[] = [];
  let errors = 0;
  let received = 0;
  let next = job.first;
  const end = job.first + job.count;
  const one = async (): Promise<void> => {
    for (let index = next++; index < end; index = next++) {
      const user = job.users[index % job.users.length];
      const address = job.addresses[index - job.first];
      if (!user || !address) throw new Error("no user or address for this socket");
      try {
        sockets.push(await openClient(user, address, env, ctx, () => received++, () => errors++));
      } catch (error) {
        errors++;
        if (errors <= 3) console.error(`in-runtime socket ${index}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  };
  const run = async (): Promise<void> => {
    await Promise.all(Array.from({ length: job.concurrency }, one));
    await say({ identified: sockets.length, errors });
    // Reporting until the caller drops the request keeps this request, and so its sockets, alive.
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      await say({ received, errors });
    }
  };
  ctx.waitUntil(run().catch(() => writer.abort().catch(() => {})));
  return new Response(readable, { headers: { "content-type": "application/x-ndjson" } });
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    if (new URL(request.url).pathname === "/__bench/sockets" && request.method === "POST") {
      return drive((await request.json()) as Job, env, ctx);
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
