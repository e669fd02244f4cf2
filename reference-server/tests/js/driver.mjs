// Drives real socket.io-client sockets for the Rust integration tests.
//
// Reads one JSON command per line on stdin and writes one JSON line per outcome on
// stdout. Every event a socket receives is written as {op:"event", name, event, data}.
//
//   {op:"connect", seq, name, token?, transports?}  -> {op:"open", name, transport} (engine open)
//                                                     then {op:"connected", seq, name, id, transport}
//                                                     | {op:"connect_error", seq, name, message, data}
//   {op:"emit", seq, name, event, data}             -> {op:"ack", seq, name, error, ack}
//   {op:"transport", seq, name}                     -> {op:"transport", seq, name, transport}
//   {op:"close", seq, name}                         -> {op:"closed", seq, name}
//
// Environment: EDGE_URL, the server's base URL (http://127.0.0.1:PORT).

import readline from "node:readline";
import { io } from "socket.io-client";

const url = process.env.EDGE_URL;
if (!url) {
  process.stderr.write("EDGE_URL is not set\n");
  process.exit(2);
}

const sockets = new Map();
const out = (line) => process.stdout.write(JSON.stringify(line) + "\n");

function connect(cmd) {
  const options = { reconnection: false, forceNew: true, timeout: 10000 };
  if (cmd.token !== undefined && cmd.token !== null) {
    options.auth = { token: cmd.token };
  }
  if (cmd.transports) {
    options.transports = cmd.transports;
  }
  const socket = io(url, options);
  sockets.set(cmd.name, socket);
  // The engine opens first (on its first transport), then may upgrade.
  socket.io.on("open", () => {
    const engine = socket.io.engine;
    out({ op: "open", name: cmd.name, transport: engine.transport.name });
    engine.on("upgrade", (transport) =>
      out({ op: "upgraded", name: cmd.name, transport: transport.name }),
    );
  });
  socket.on("connect", () =>
    out({ op: "connected", seq: cmd.seq, name: cmd.name, id: socket.id, transport: socket.io.engine.transport.name }),
  );
  socket.on("connect_error", (err) =>
    out({ op: "connect_error", seq: cmd.seq, name: cmd.name, message: err.message, data: err.data ?? null }),
  );
  socket.on("disconnect", (reason) => out({ op: "disconnected", name: cmd.name, reason }));
  socket.onAny((event, ...args) => out({ op: "event", name: cmd.name, event, data: args[0] ?? null }));
}

function handle(cmd) {
  const socket = sockets.get(cmd.name);
  switch (cmd.op) {
    case "connect":
      connect(cmd);
      return;
    case "emit":
      socket.timeout(cmd.timeout ?? 10000).emit(cmd.event, cmd.data, (err, ack) =>
        out({ op: "ack", seq: cmd.seq, name: cmd.name, error: err ? String(err.message ?? err) : null, ack: ack ?? null }),
      );
      return;
    case "transport":
      out({ op: "transport", seq: cmd.seq, name: cmd.name, transport: socket.io.engine.transport.name });
      return;
    case "close":
      socket.close();
      out({ op: "closed", seq: cmd.seq, name: cmd.name });
      return;
    default:
      out({ op: "error", seq: cmd.seq, message: `unknown op ${cmd.op}` });
  }
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  try {
    handle(JSON.parse(line));
  } catch (err) {
    out({ op: "error", message: String(err) });
  }
});
lines.on("close", () => {
  for (const socket of sockets.values()) socket.close();
  process.exit(0);
});
out({ op: "ready", client: "socket.io-client" });
