import React from 'react';
import { createRoot } from 'react-dom/client';
import { SocketProvider } from './context/SocketContext';
import { App } from './App';

// No <React.StrictMode>: in development it mounts effects twice, so the seed's
// context would open a socket, close it and open another.
createRoot(document.getElementById('root')!).render(
  <SocketProvider>
    <App />
  </SocketProvider>,
);
