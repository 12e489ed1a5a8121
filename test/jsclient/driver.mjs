// driver.mjs: the real socket.io-client (what the React app uses), driven by
// the Go end-to-end tests over stdin/stdout, one JSON object per line.
//
// Requests: { id, op, ... }; every request gets one reply { id, ok, ... }.
//   connect    { name, url, auth?, transports?, reconnection?, extraHeaders?, withCredentials?, timeoutMs? }
//              -> { sid, transport } once connected, or { ok:false, error:{ message, data } } on connect_error
//   emit       { name, event, args?, ack?, timeoutMs? } -> { ack } when ack is true (the server's answer)
//              an argument { "$binary": "<base64>" } (at any depth) is sent as a binary Buffer
//   emitRaw    { name, data }                -> {} after sending data as an Engine.IO message packet
//   wait       { name, event, timeoutMs? }   -> { args } of the oldest unread such event (waits for one)
//   drain      { name, event }               -> { list } of every unread such event, without waiting
//   state      { name }                      -> { connected, transport, sid, recovered }
//   dropTransport { name }                   -> {} after closing the connection under the client (it reconnects)
//   close      { name }                      -> {}
//   waitReconnect { name, timeoutMs? }       -> { sid } once the socket reconnected by itself
// Every event a socket receives is kept, per event name, until read.
import { io } from 'socket.io-client';
import readline from 'node:readline';

const sockets = new Map(); // name -> { socket, inbox: Map(event -> [args]), waiters: Map(event -> [resolve]) }

function reply(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }

function deliver(entry, event, args) {
  const waiters = entry.waiters.get(event);
  if (waiters && waiters.length) { waiters.shift()(args); return; }
  if (!entry.inbox.has(event)) entry.inbox.set(event, []);
  entry.inbox.get(event).push(args);
}

function take(entry, event, timeoutMs) {
  const box = entry.inbox.get(event);
  if (box && box.length) return Promise.resolve(box.shift());
  return new Promise((resolve, reject) => {
    if (!entry.waiters.has(event)) entry.waiters.set(event, []);
    const list = entry.waiters.get(event);
    const t = setTimeout(() => {
      const i = list.indexOf(done);
      if (i >= 0) list.splice(i, 1);
      reject(new Error(`no "${event}" within ${timeoutMs} ms`));
    }, timeoutMs);
    function done(args) { clearTimeout(t); resolve(args); }
    list.push(done);
  });
}

// revive turns { $binary: base64 } placeholders into Buffers, so tests can send binary attachments.
function revive(v) {
  if (Array.isArray(v)) return v.map(revive);
  if (v && typeof v === 'object') {
    if (typeof v.$binary === 'string' && Object.keys(v).length === 1) return Buffer.from(v.$binary, 'base64');
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, revive(x)]));
  }
  return v;
}

function get(name) {
  const e = sockets.get(name);
  if (!e) throw new Error(`no socket named ${name}`);
  return e;
}

const ops = {
  async connect(r) {
    const socket = io(r.url, {
      auth: r.auth ?? {},
      transports: r.transports ?? ['polling', 'websocket'],
      reconnection: r.reconnection ?? false,
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
      extraHeaders: r.extraHeaders,
      withCredentials: r.withCredentials ?? false, // in Node: keep cookies (engine.io-client's cookie jar)
      forceNew: true,
      timeout: r.timeoutMs ?? 5000,
    });
    const entry = { socket, inbox: new Map(), waiters: new Map() };
    sockets.set(r.name, entry);
    socket.onAny((event, ...args) => deliver(entry, event, args));
    socket.on('disconnect', (reason) => deliver(entry, '$disconnect', [reason]));
    socket.on('connect', () => deliver(entry, '$connect', [socket.id]));
    socket.on('connect_error', (err) => deliver(entry, '$connect_error', [{ message: err.message, data: err.data ?? null }]));
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve({ ok: false, error: { message: 'connect timeout' } }), (r.timeoutMs ?? 5000) + 1000);
      socket.once('connect', () => {
        clearTimeout(t);
        // wait for a possible upgrade so tests see the final transport
        setTimeout(() => {
          entry.inbox.delete('$connect'); // the first connect is this reply; waitReconnect waits for the next
          resolve({ ok: true, sid: socket.id, transport: socket.io.engine.transport.name });
        }, r.settleMs ?? 50);
      });
      socket.once('connect_error', (err) => {
        clearTimeout(t);
        resolve({ ok: false, error: { message: err.message, data: err.data ?? null } });
      });
    });
  },
  async emit(r) {
    const { socket } = get(r.name);
    const args = revive(r.args ?? []);
    if (!r.ack) { socket.emit(r.event, ...args); return {}; }
    const ack = await socket.timeout(r.timeoutMs ?? 5000).emitWithAck(r.event, ...args);
    return { ack };
  },
  async emitRaw(r) {
    // send an arbitrary Engine.IO message packet ("4" + Socket.IO packet text)
    const { socket } = get(r.name);
    socket.io.engine.send(r.data);
    return {};
  },
  async wait(r) {
    const args = await take(get(r.name), r.event, r.timeoutMs ?? 5000);
    return { args };
  },
  async drain(r) {
    const e = get(r.name);
    const list = e.inbox.get(r.event) ?? [];
    e.inbox.set(r.event, []);
    return { list };
  },
  async state(r) {
    const { socket } = get(r.name);
    return { connected: socket.connected, sid: socket.id ?? null, recovered: socket.recovered ?? false,
      transport: socket.io.engine?.transport?.name ?? null };
  },
  async dropTransport(r) {
    // the connection drops under the client (as a network does): it sees
    // "transport close" and reconnects by itself, with recovery if the server keeps its session
    get(r.name).socket.io.engine.close();
    return {};
  },

  async setAuth(r) {
    // what an app does when it swaps the token of a socket it keeps: the next
    // (re)connection presents this auth, with the same recovery session
    get(r.name).socket.auth = r.auth ?? {};
    return {};
  },

  async close(r) {
    const e = sockets.get(r.name);
    if (e) { e.socket.close(); sockets.delete(r.name); }
    return {};
  },
  async waitReconnect(r) {
    const e = get(r.name);
    const [sid] = await take(e, '$connect', r.timeoutMs ?? 10000);
    return { sid };
  },
};

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  let r;
  try { r = JSON.parse(line); } catch { return; }
  try {
    const fn = ops[r.op];
    if (!fn) throw new Error(`unknown op ${r.op}`);
    const res = await fn(r);
    reply({ ok: true, ...res, id: r.id });
  } catch (err) {
    reply({ id: r.id, ok: false, error: { message: String(err.message ?? err) } });
  }
});
rl.on('close', () => { for (const { socket } of sockets.values()) socket.close(); process.exit(0); });
