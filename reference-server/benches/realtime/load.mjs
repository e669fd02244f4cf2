// Load generator for `cargo bench --bench realtime` (issue 10): the same load against Edge
// and against the Node baseline (`baseline-server.mjs`), with `socket.io-client`.
//
//   node load.mjs --url http://127.0.0.1:PORT [--clients FILE | --count 1000 --rooms 100]
//                 [--warmup 5] [--seconds 20] [--senders all|room] [--window 1]
//                 [--rate MSGS_PER_S] [--procs 1] [--body-bytes 100] [--label TEXT]
//
// Clients: `--clients FILE` is a JSON array of `{"token": string|null, "room": string}`,
// one element per client (the token goes in the handshake as `auth: {token}`); without
// it, `--count` clients are spread round-robin over `--rooms` rooms named `room-{k}`, with
// no token. Every client is its own websocket (`transports: ["websocket"]`, no
// multiplexing, no reconnection), connected 50 at a time, and joins its room (`join`,
// ack must be `{ok: true}`). A client that cannot connect or join fails the run (exit 1,
// a JSON line with `error`).
//
// Load (after every client has joined; all processes start at the same instant):
// - closed loop (default): every sender keeps `--window` messages in flight: it sends
//   `sendMessage {room, body, client_message_id}` and sends the next one when the ack
//   comes back. With every client a sender (`--senders all`, the default), 1,000
//   messages are always in flight, so the server is saturated: throughput is what the
//   server (sharing the CPU with this generator) can do, and latency is mostly queueing.
// - open loop (`--rate M`): M messages per second in all, spread evenly over the
//   senders, whatever the acks do: latency at a fixed offered load.
// `--senders room` makes only the first client of each room a sender.
//
// Each body starts with its send time (`process.hrtime`, monotonic microseconds, the same
// clock in every process of the machine), then the sender and sequence number, padded
// with `x` to `--body-bytes`. Each receiver takes receive time − send time as the
// delivery latency. Only messages sent inside the measured window (after `--warmup`
// seconds, for `--seconds` seconds) count; sending stops at the end of the window and
// the deliveries still in flight are awaited (until no ack is outstanding and nothing has
// arrived for 0.5 s, at most 10 s).
//
// `--procs P` splits the clients over P worker processes (client i in process i mod P).
//
// Output: one JSON line on stdout (progress goes to stderr):
//   label, url, clients, rooms, senders, procs, mode, window/rate, warmup_s, seconds,
//   messages_sent, messages_acked, deliveries_received, deliveries_expected,
//   delivered_per_s, acked_per_s, latency_ms {p50, p95, p99, max} (delivery),
//   ack_latency_ms {p50, p95, p99, max}, errors {kind: count}, error_total,
//   generator_cpu_s (user + system of the worker processes during the window),
//   connect_s (time to connect and join every client).
// `deliveries_expected` is, for each message sent in the window and acked `ok`, the
// number of other clients in its room. A message whose ack timed out may still be
// delivered, so received can exceed expected; anything missing is in `errors.missing`.

import { fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";

const CONNECT_CONCURRENCY = 50;
const CONNECT_TIMEOUT_MS = 20_000;
const ACK_TIMEOUT_MS = 10_000;
const QUIET_US = 500_000;
const DRAIN_MAX_US = 10_000_000;

// Message ids are unique per run: Edge stores a resend of a known \`client_message_id\`
// once and broadcasts nothing, so ids reused from an earlier run would never be delivered.
const RUN = randomUUID();
const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const log = (...args) => process.stderr.write(`[load] ${args.join(" ")}\n`);

// ---- Latency histogram: exact microseconds below 1 ms, then 0.2 % wide buckets. ----

const EXACT = 1000;
const STEP = Math.log(1.002);

function bucketOf(us) {
  const v = Math.max(0, Math.round(us));
  return v < EXACT ? v : EXACT + Math.floor(Math.log(v / EXACT) / STEP);
}

function valueOf(bucket) {
  return bucket < EXACT ? bucket : EXACT * Math.exp((bucket - EXACT + 0.5) * STEP);
}

class Histogram {
  constructor() {
    this.counts = new Map();
    this.n = 0;
    this.max = 0;
  }
  record(us) {
    const b = bucketOf(us);
    this.counts.set(b, (this.counts.get(b) ?? 0) + 1);
    this.n += 1;
    if (us > this.max) this.max = us;
  }
  toJSON() {
    return { counts: [...this.counts], n: this.n, max: this.max };
  }
  merge(json) {
    for (const [b, c] of json.counts) this.counts.set(b, (this.counts.get(b) ?? 0) + c);
    this.n += json.n;
    if (json.max > this.max) this.max = json.max;
  }
  percentileMs(p) {
    if (this.n === 0) return null;
    const rank = Math.max(1, Math.ceil(p * this.n));
    let seen = 0;
    for (const b of [...this.counts.keys()].sort((x, y) => x - y)) {
      seen += this.counts.get(b);
      if (seen >= rank) return Math.min(valueOf(b), this.max) / 1000;
    }
    return this.max / 1000;
  }
  summary() {
    const round = (v) => (v === null ? null : Math.round(v * 1000) / 1000);
    return {
      p50: round(this.percentileMs(0.5)),
      p95: round(this.percentileMs(0.95)),
      p99: round(this.percentileMs(0.99)),
      max: round(this.n === 0 ? null : this.max / 1000),
    };
  }
}

// ---- Arguments ----

function parseArgs(argv) {
  const opts = {
    url: null,
    clientsFile: null,
    count: 1000,
    rooms: 100,
    warmup: 5,
    seconds: 20,
    senders: "all",
    window: 1,
    rate: null,
    procs: 1,
    bodyBytes: 100,
    label: null,
  };
  const numbers = {
    "--count": "count",
    "--rooms": "rooms",
    "--warmup": "warmup",
    "--seconds": "seconds",
    "--window": "window",
    "--rate": "rate",
    "--procs": "procs",
    "--body-bytes": "bodyBytes",
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag in numbers) {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw new Error(`${flag}: not a number: ${value}`);
      opts[numbers[flag]] = n;
    } else if (flag === "--url") opts.url = value;
    else if (flag === "--clients") opts.clientsFile = value;
    else if (flag === "--senders") opts.senders = value;
    else if (flag === "--label") opts.label = value;
    else throw new Error(`unknown argument ${flag}`);
  }
  if (!opts.url) throw new Error("--url is required");
  if (!["all", "room"].includes(opts.senders)) throw new Error("--senders is all or room");
  if (opts.procs < 1 || opts.window < 1 || opts.seconds <= 0) {
    throw new Error("--procs and --window must be at least 1, --seconds positive");
  }
  return opts;
}

function loadClients(opts) {
  if (opts.clientsFile) {
    const list = JSON.parse(readFileSync(opts.clientsFile, "utf8"));
    if (!Array.isArray(list) || list.length === 0) throw new Error("client file: empty");
    return list.map((c, index) => {
      if (typeof c?.room !== "string") throw new Error(`client ${index}: no room`);
      return { index, token: c.token ?? null, room: c.room };
    });
  }
  return Array.from({ length: opts.count }, (_, index) => ({
    index,
    token: null,
    room: `room-${index % opts.rooms}`,
  }));
}

// ---- Worker: connects its clients, sends, receives, reports. ----

async function pool(items, concurrency, fn) {
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const item = items[next++];
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, run));
}

function connect(url, client) {
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      transports: ["websocket"],
      auth: client.token === null ? {} : { token: client.token },
      forceNew: true,
      multiplex: false,
      reconnection: false,
      timeout: CONNECT_TIMEOUT_MS,
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => {
      socket.close();
      const data = err?.data ? ` ${JSON.stringify(err.data)}` : "";
      reject(new Error(`connect_error: ${err?.message ?? err}${data}`));
    });
  });
}

async function runWorker() {
  const init = await new Promise((resolve) => process.once("message", resolve));
  const { opts, clients, roomSizes } = init;
  const errors = {};
  const fail = (kind) => {
    errors[kind] = (errors[kind] ?? 0) + 1;
  };
  const delivery = new Histogram();
  const ack = new Histogram();
  let window = { start: Infinity, end: Infinity };
  let stopped = false;
  let lastDelivery = 0;
  let outstanding = 0;
  const counts = { sent: 0, acked: 0, expected: 0, received: 0, received_total: 0, sent_total: 0 };
  let exiting = false;

  // Connect and join.
  let failure = null;
  await pool(clients, CONNECT_CONCURRENCY, async (client) => {
    if (failure) return;
    try {
      client.socket = await connect(opts.url, client);
      const joined = await client.socket
        .timeout(ACK_TIMEOUT_MS)
        .emitWithAck("join", { room: client.room });
      if (!joined?.ok) throw new Error(`join ${client.room}: ${JSON.stringify(joined)}`);
    } catch (err) {
      failure ??= `client ${client.index}: ${err.message}`;
      return;
    }
    client.seq = 0;
    client.socket.on("disconnect", (reason) => {
      if (!exiting) fail(`disconnect:${reason}`);
    });
    client.socket.on("message", (payload) => {
      const at = nowUs();
      const message = payload?.message;
      const body = message?.body;
      const sentAt = typeof body === "string" ? Number.parseInt(body, 10) : Number.NaN;
      if (!Number.isFinite(sentAt)) return fail("malformed_message");
      if (message.room !== client.room) fail("wrong_room");
      counts.received_total += 1;
      lastDelivery = at;
      if (sentAt >= window.start && sentAt < window.end) {
        counts.received += 1;
        delivery.record(at - sentAt);
      }
    });
  });
  if (failure) {
    process.send({ type: "failed", error: failure });
    for (const c of clients) c.socket?.close();
    return;
  }
  process.send({ type: "ready" });

  const start = await new Promise((resolve) => process.once("message", resolve));
  window = { start: start.t0 + opts.warmup * 1e6, end: start.t0 + (opts.warmup + opts.seconds) * 1e6 };
  const senders = clients.filter((c) => opts.senders === "all" || c.firstInRoom);
  const padding = "x".repeat(opts.bodyBytes);

  const sendOne = (client) => {
    if (stopped) return;
    const sentAt = nowUs();
    const seq = client.seq++;
    const prefix = `${sentAt}:${client.index}:${seq}:`;
    const body = prefix.length >= opts.bodyBytes ? prefix : prefix + padding.slice(prefix.length);
    const inWindow = sentAt >= window.start && sentAt < window.end;
    counts.sent_total += 1;
    if (inWindow) counts.sent += 1;
    outstanding += 1;
    client.socket
      .timeout(ACK_TIMEOUT_MS)
      .emit(
        "sendMessage",
        { room: client.room, body, client_message_id: `${RUN}-${client.index}-${seq}` },
        (err, res) => {
          outstanding -= 1;
          if (err) fail("ack_timeout");
          else if (!res?.ok) fail(`ack_${res?.error?.code ?? "malformed"}`);
          else if (inWindow) {
            counts.acked += 1;
            counts.expected += roomSizes[client.room] - 1;
            ack.record(nowUs() - sentAt);
          }
          if (opts.rate === null) sendOne(client);
        },
      );
  };

  await new Promise((resolve) => setTimeout(resolve, Math.max(0, (start.t0 - nowUs()) / 1000)));
  if (opts.rate === null) {
    for (const client of senders) for (let i = 0; i < opts.window; i++) sendOne(client);
  } else if (senders.length > 0) {
    // This process's share of the rate, round-robin over its senders.
    const rate = (opts.rate * senders.length) / start.totalSenders;
    let issued = 0;
    let next = 0;
    const tick = setInterval(() => {
      if (stopped) return clearInterval(tick);
      const due = Math.floor(((nowUs() - start.t0) * rate) / 1e6) - issued;
      for (let i = 0; i < due; i++) {
        sendOne(senders[next]);
        next = (next + 1) % senders.length;
      }
      issued += Math.max(0, due);
    }, 2);
  }

  // CPU of this process over the measured window.
  let cpuAtStart = null;
  setTimeout(() => (cpuAtStart = process.cpuUsage()), Math.max(0, (window.start - nowUs()) / 1000));
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, (window.end - nowUs()) / 1000)));
  stopped = true;
  const cpu = process.cpuUsage(cpuAtStart ?? undefined);
  const drainStart = nowUs();
  while (nowUs() - drainStart < DRAIN_MAX_US) {
    if (outstanding === 0 && nowUs() - Math.max(lastDelivery, drainStart) > QUIET_US) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (outstanding > 0) errors.outstanding_after_drain = outstanding;
  process.send({
    type: "result",
    counts,
    errors,
    delivery: delivery.toJSON(),
    ack: ack.toJSON(),
    cpu_s: (cpu.user + cpu.system) / 1e6,
  });
  await new Promise((resolve) => process.once("message", resolve));
  exiting = true;
  for (const c of clients) c.socket.close();
  process.exit(0);
}

// ---- Coordinator ----

function message(child, type) {
  return new Promise((resolve, reject) => {
    const onMessage = (m) => {
      if (m.type === type || m.type === "failed") {
        child.off("message", onMessage);
        child.off("exit", onExit);
        resolve(m);
      }
    };
    const onExit = (code) => reject(new Error(`worker exited with ${code} before "${type}"`));
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

async function main() {
  let opts;
  let clients;
  try {
    opts = parseArgs(process.argv.slice(2));
    clients = loadClients(opts);
  } catch (err) {
    log(err.message);
    process.stdout.write(`${JSON.stringify({ error: err.message })}\n`);
    process.exit(2);
  }
  const roomSizes = {};
  for (const c of clients) {
    c.firstInRoom = roomSizes[c.room] === undefined;
    roomSizes[c.room] = (roomSizes[c.room] ?? 0) + 1;
  }
  const rooms = Object.keys(roomSizes).length;
  const totalSenders = clients.filter((c) => opts.senders === "all" || c.firstInRoom).length;
  const procs = Math.min(opts.procs, clients.length);
  const base = {
    label: opts.label,
    url: opts.url,
    clients: clients.length,
    rooms,
    senders: totalSenders,
    procs,
    mode: opts.rate === null ? "closed" : "open",
    ...(opts.rate === null ? { window: opts.window } : { rate: opts.rate }),
    warmup_s: opts.warmup,
    seconds: opts.seconds,
    body_bytes: opts.bodyBytes,
  };

  log(`${opts.label ?? opts.url}: connecting ${clients.length} clients in ${rooms} rooms (${procs} processes)`);
  const connectStarted = nowUs();
  const workers = Array.from({ length: procs }, () =>
    fork(fileURLToPath(import.meta.url), ["--worker"], { stdio: ["ignore", "inherit", "inherit", "ipc"] }),
  );
  const ready = workers.map((w) => message(w, "ready"));
  workers.forEach((w, k) =>
    w.send({ opts, clients: clients.filter((c) => c.index % procs === k), roomSizes }),
  );
  const states = await Promise.allSettled(ready);
  const failed = states.find((s) => s.status === "rejected" || s.value.type === "failed");
  if (failed) {
    const error = failed.status === "rejected" ? failed.reason.message : failed.value.error;
    log(`setup failed: ${error}`);
    process.stdout.write(`${JSON.stringify({ ...base, error })}\n`);
    for (const w of workers) w.kill();
    process.exit(1);
  }
  const connectS = (nowUs() - connectStarted) / 1e6;
  log(`connected and joined in ${connectS.toFixed(1)} s; warm-up ${opts.warmup} s, measuring ${opts.seconds} s`);

  const t0 = nowUs() + 200_000;
  const results = workers.map((w) => message(w, "result"));
  for (const w of workers) w.send({ t0, totalSenders });
  const parts = await Promise.all(results);
  for (const w of workers) w.send({ exit: true });

  const counts = { sent: 0, acked: 0, expected: 0, received: 0 };
  const errors = {};
  const delivery = new Histogram();
  const ack = new Histogram();
  let cpu = 0;
  for (const part of parts) {
    for (const k of Object.keys(counts)) counts[k] += part.counts[k];
    for (const [k, v] of Object.entries(part.errors)) errors[k] = (errors[k] ?? 0) + v;
    delivery.merge(part.delivery);
    ack.merge(part.ack);
    cpu += part.cpu_s;
  }
  if (counts.received < counts.expected) errors.missing = counts.expected - counts.received;
  const result = {
    ...base,
    messages_sent: counts.sent,
    messages_acked: counts.acked,
    deliveries_received: counts.received,
    deliveries_expected: counts.expected,
    delivered_per_s: Math.round(counts.received / opts.seconds),
    acked_per_s: Math.round(counts.acked / opts.seconds),
    latency_ms: delivery.summary(),
    ack_latency_ms: ack.summary(),
    errors,
    error_total: Object.values(errors).reduce((a, b) => a + b, 0),
    generator_cpu_s: Math.round(cpu * 100) / 100,
    connect_s: Math.round(connectS * 10) / 10,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[2] === "--worker") {
  runWorker().catch((err) => {
    process.send?.({ type: "failed", error: err.stack ?? String(err) });
    process.exit(1);
  });
} else {
  main().catch((err) => {
    log(err.stack ?? String(err));
    process.stdout.write(`${JSON.stringify({ error: String(err.message ?? err) })}\n`);
    process.exit(1);
  });
}
