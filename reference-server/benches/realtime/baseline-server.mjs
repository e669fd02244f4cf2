// The baseline for `cargo bench --bench realtime`: a minimal Socket.IO server (the
// `socket.io` package, default options) that does only what the load uses, with the same
// event names and payloads as Edge's realtime protocol. No auth, no storage, no checks
// beyond the payload's shape.
//
//   node baseline-server.mjs [--port N]     (or PORT=N; default 0, any free port)
//
// Prints its URL (`http://127.0.0.1:PORT`) on stdout, on one line, once it listens.
//
// - `join {room}` -> ack `{ok: true, room}`; the socket joins the room.
// - `leave {room}` -> ack `{ok: true, room}`.
// - `sendMessage {room, body, client_message_id?}` -> ack `{ok: true, message}` and
//   `message {message}` to every other socket in the room, where message =
//   `{id, room, sender_id, body, client_message_id, created_at, edited_at, deleted_at}`.

import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { Server } from "socket.io";

function port() {
  const i = process.argv.indexOf("--port");
  const value = i >= 0 ? process.argv[i + 1] : (process.env.PORT ?? "0");
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`invalid port: ${value}`);
    process.exit(2);
  }
  return n;
}

function invalid(message) {
  return { ok: false, error: { code: "invalid", message } };
}

const httpServer = createServer();
const io = new Server(httpServer, { serveClient: false });

io.on("connection", (socket) => {
  // Stands in for the authenticated user's id.
  const senderId = randomUUID();

  socket.on("join", (payload, ack) => {
    if (typeof ack !== "function") return;
    const room = payload?.room;
    if (typeof room !== "string" || room === "") return ack(invalid("room is required"));
    socket.join(room);
    ack({ ok: true, room });
  });

  socket.on("leave", (payload, ack) => {
    if (typeof ack !== "function") return;
    const room = payload?.room;
    if (typeof room !== "string" || room === "") return ack(invalid("room is required"));
    socket.leave(room);
    ack({ ok: true, room });
  });

  socket.on("sendMessage", (payload, ack) => {
    if (typeof ack !== "function") return;
    const room = payload?.room;
    const body = payload?.body;
    const clientMessageId = payload?.client_message_id ?? null;
    if (typeof room !== "string" || room === "") return ack(invalid("room is required"));
    if (typeof body !== "string" || body === "" || body.length > 4000) {
      return ack(invalid("body must be 1 to 4,000 characters"));
    }
    const message = {
      id: randomUUID(),
      room,
      sender_id: senderId,
      body,
      client_message_id: clientMessageId,
      created_at: new Date().toISOString(),
      edited_at: null,
      deleted_at: null,
    };
    socket.to(room).emit("message", { message });
    ack({ ok: true, message });
  });
});

httpServer.listen(port(), "127.0.0.1", () => {
  const { port } = httpServer.address();
  process.stdout.write(`http://127.0.0.1:${port}\n`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
