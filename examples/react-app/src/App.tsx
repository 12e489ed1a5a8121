// The example page around the seed's SocketContext (src/context/SocketContext.tsx,
// kept byte for byte as the React app has it). Everything the context does not
// do itself is here: a token form, the chat, the transport log. The elements
// carry data-testid attributes that test/browser_test.go reads: keep them stable.
import React, { useEffect, useState } from 'react';
import type { Socket } from 'socket.io-client';
import { useSocket } from './context/SocketContext';

type ChatMessage = {
  _id: string;
  chatRoomId: string;
  senderId: string | { _id: string; name?: string };
  message: string;
  messageType?: string;
};

declare global {
  interface Window {
    // For the test and for poking at by hand in the browser's console.
    fitmate?: { socket: Socket | null; transports: string[] };
  }
}

const senderOf = (m: ChatMessage) => (typeof m.senderId === 'string' ? m.senderId : m.senderId?._id);

// useTransportLog records each Engine.IO connection's first transport and its
// upgrades, e.g. ["polling", "upgrade:websocket"], from socket.io.engine: the
// Manager makes a new engine on every reconnection and says "open" for it.
function useTransportLog(socket: Socket | null) {
  const [log, setLog] = useState<string[]>([]);
  const [current, setCurrent] = useState('');
  useEffect(() => {
    if (!socket) return;
    const manager = socket.io;
    const watched = new WeakSet<object>();
    const entries: string[] = [];
    window.fitmate = { socket, transports: entries };
    const add = (entry: string, name: string) => {
      entries.push(entry);
      setLog([...entries]);
      setCurrent(name);
    };
    const watch = () => {
      const engine = manager.engine;
      if (!engine || watched.has(engine)) return;
      watched.add(engine);
      add(engine.transport.name, engine.transport.name);
      engine.on('upgrade', (transport: { name: string }) => add('upgrade:' + transport.name, transport.name));
    };
    watch(); // the first engine exists already: io() opens it at once
    manager.on('open', watch);
    return () => {
      manager.off('open', watch);
    };
  }, [socket]);
  return { log, current };
}

function TokenForm() {
  const [value, setValue] = useState('');
  return (
    <form
      data-testid="token-form"
      onSubmit={(e) => {
        e.preventDefault();
        localStorage.setItem('token', value.trim());
        location.reload(); // SocketContext reads the token once, when it mounts
      }}
    >
      <p>No token in localStorage. Paste a JWT for a user (see docs/browser-test.md):</p>
      <input value={value} onChange={(e) => setValue(e.target.value)} size={60} placeholder="eyJ..." />
      <button type="submit">Save and reload</button>
    </form>
  );
}

export function App() {
  const { socket, isConnected, joinChat, sendMessage, notifications, unreadCount } = useSocket();
  const transport = useTransportLog(socket);
  const [roomInput, setRoomInput] = useState('');
  const [room, setRoom] = useState('');
  const [joins, setJoins] = useState(0); // chatHistory answers received for `room`
  const [connects, setConnects] = useState(0);
  const [messages, setMessages] = useState<ChatMessage[]>([]);
  const [draft, setDraft] = useState('');
  const [lastError, setLastError] = useState('');

  // Count connections, and join the room again after each reconnection: a new
  // connection is a new socket, in no room (the seed's context does not rejoin).
  useEffect(() => {
    if (!isConnected) return;
    setConnects((n) => n + 1);
    if (room) joinChat(room);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [isConnected]);

  useEffect(() => {
    if (!socket) return;
    const onMessage = (m: ChatMessage) => setMessages((prev) => [...prev, m]);
    const onHistory = () => setJoins((n) => n + 1);
    const onError = (e: { message?: string; code?: string }) => setLastError(`${e?.code ?? ''} ${e?.message ?? ''}`.trim());
    const onConnectError = (e: Error) => setLastError('connect_error: ' + e.message);
    const onConnect = () => setLastError(''); // errors while reconnecting are over once connected
    socket.on('newMessage', onMessage);
    socket.on('chatHistory', onHistory);
    socket.on('error', onError);
    socket.on('connect_error', onConnectError);
    socket.on('connect', onConnect);
    return () => {
      socket.off('newMessage', onMessage);
      socket.off('chatHistory', onHistory);
      socket.off('error', onError);
      socket.off('connect_error', onConnectError);
      socket.off('connect', onConnect);
    };
  }, [socket]);

  if (!localStorage.getItem('token')) return <TokenForm />;

  const shown = messages.filter((m) => m.chatRoomId === room);
  return (
    <main>
      <h1>FitMate socket example</h1>
      <section>
        <p>
          connected: <b data-testid="connected">{String(isConnected)}</b> · connections:{' '}
          <span data-testid="connects">{connects}</span> · transport: <span data-testid="transport">{transport.current}</span>{' '}
          (<span data-testid="transport-log">{transport.log.join(' ')}</span>)
        </p>
        <p>
          unread notifications: <b data-testid="unread-count">{unreadCount}</b>
        </p>
        <ul data-testid="notifications">
          {notifications.map((n, i) => (
            <li key={n._id ?? i} data-testid="notification">
              {n.title}: {n.message}
            </li>
          ))}
        </ul>
        <p>
          last error: <span data-testid="last-error">{lastError}</span>
        </p>
      </section>
      <section>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const id = roomInput.trim();
            if (!id) return;
            setRoom(id);
            setJoins(0);
            joinChat(id);
          }}
        >
          <input data-testid="room-input" value={roomInput} onChange={(e) => setRoomInput(e.target.value)} placeholder="room id" />
          <button data-testid="join" type="submit">
            Join
          </button>
          <span>
            {' '}
            room: <span data-testid="room">{room}</span> · joined: <span data-testid="joins">{joins}</span>
          </span>
        </form>
        <ol data-testid="messages">
          {shown.map((m, i) => (
            <li key={m._id ?? i} data-testid="message" data-sender={senderOf(m)}>
              {m.message}
            </li>
          ))}
        </ol>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (!room || !draft) return;
            sendMessage(room, draft);
            setDraft('');
          }}
        >
          <input data-testid="message-input" value={draft} onChange={(e) => setDraft(e.target.value)} placeholder="message" />
          <button data-testid="send" type="submit">
            Send
          </button>
        </form>
      </section>
    </main>
  );
}
