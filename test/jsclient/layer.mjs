// layer.mjs: one scripted session of the real socket.io-client against the
// project's own Socket.IO layer (gateway/socketio's jsclient_test.go starts the
// server with the handlers this script expects and reads its JSON report).
//   node layer.mjs URL TRANSPORTS_JSON
// Steps: connect (auth, middleware), upgrade when polling, acks both ways,
// binary both ways, then a transport-level close by the server and the
// client's own reconnection with connection state recovery.
import { io } from 'socket.io-client';

const [url, transports] = process.argv.slice(2);
const report = { steps: [] };
const inbox = new Map();
const waiters = new Map();

function deliver(event, args) {
  const w = waiters.get(event);
  if (w && w.length) return w.shift()(args);
  if (!inbox.has(event)) inbox.set(event, []);
  inbox.get(event).push(args);
}
function next(event, ms = 5000) {
  const box = inbox.get(event);
  if (box && box.length) return Promise.resolve(box.shift());
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no "${event}" within ${ms} ms`)), ms);
    if (!waiters.has(event)) waiters.set(event, []);
    waiters.get(event).push((args) => { clearTimeout(t); resolve(args); });
  });
}
const b64 = (v) => (Buffer.isBuffer(v) || v instanceof ArrayBuffer ? { $binary: Buffer.from(v).toString('base64') } : v);

const socket = io(url, {
  auth: { token: 'ok' },
  transports: JSON.parse(transports),
  reconnectionDelay: 100,
  reconnectionDelayMax: 200,
  timeout: 5000,
});
socket.onAny((event, ...args) => deliver(event, args));
socket.on('connect', () => deliver('$connect', [socket.id, socket.recovered]));
socket.on('disconnect', (reason) => deliver('$disconnect', [reason]));
socket.on('connect_error', (err) => deliver('$connect_error', [err.message, err.data ?? null]));
socket.on('question', (n, cb) => cb(n + 1, 'from the client'));

try {
  const [id] = await next('$connect');
  report.id = id;
  report.welcome = (await next('welcome'))[0];
  if (transports.includes('polling')) {
    await new Promise((resolve) => {
      if (socket.io.engine.transport.name === 'websocket') return resolve();
      socket.io.engine.once('upgrade', resolve);
    });
  }
  report.transport = socket.io.engine.transport.name;

  report.echo = (await new Promise((resolve) =>
    socket.emit('echo', 'a', { n: 1, nested: [true, null] }, Buffer.from([1, 2, 3]), (...args) => resolve(args)),
  )).map(b64);

  socket.emit('ask');
  report.answered = (await next('answered'))[0];

  socket.emit('bin', { file: Buffer.from([0, 1, 2, 255]) });
  report.binBack = [(await next('bin-back'))[0], (await next('bin-back'))[0]].map(b64);

  // The server closes the transport (no DISCONNECT): the client reconnects
  // by itself and recovers its session and what it missed meanwhile.
  socket.emit('kick');
  report.disconnectReason = (await next('$disconnect'))[0];
  const [id2, recovered] = await next('$connect', 10000);
  report.sameId = id2 === id;
  report.recovered = recovered;
  report.welcomeAfter = (await next('welcome'))[0];
  report.missed = [];
  for (let i = 0; i < 3; i++) report.missed.push(await next('missed'));
  report.ok = true;
} catch (err) {
  report.error = String(err.message ?? err);
}
socket.close();
process.stdout.write(JSON.stringify(report) + '\n');
process.exit(0);
