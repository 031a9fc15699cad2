// The README's socket.io-client example as a script, run by test_socketio_events.py where Node and the
// socket.io-client package are installed (NODE_PATH): prints a JSON line per event, exits after `want`.
const { io } = require("socket.io-client");
const [url, token, want] = process.argv.slice(2);
let lastEventId = null, seen = 0;
const socket = io(url, { auth: (cb) => cb({ token, last_event_id: lastEventId }) });
socket.on("connect", () => console.log(JSON.stringify({ connected: true })));
socket.onAny((type, envelope, id) => {
  lastEventId = id;
  console.log(JSON.stringify({ type, envelope, id }));
  if (++seen >= Number(want)) socket.close();
});
socket.on("connect_error", (err) => {
  console.log(JSON.stringify({ error: err.message, data: err.data }));
  socket.close();
});
