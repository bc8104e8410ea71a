import net from 'node:net';

/** PostgreSQL's SSLRequest and GSSENCRequest codes: a client may send one before its startup message. */
const NEGOTIATION_CODES = new Set([80877103, 80877104]);
/** SQLSTATE too_many_connections. */
const TOO_MANY_CONNECTIONS = '53300';
/** A refused client that never finishes its startup message is dropped after this long. */
const REFUSE_TIMEOUT_MS = 5000;

export interface OneClientGate {
  port: number;
  /** Stops listening and cuts the client, if any. */
  close(): Promise<void>;
}

/**
 * Listens on `host:port` and lets one client at a time through to `target` (the socket server
 * over PGlite, which has one session). A second client gets what PostgreSQL sends when it is
 * full: an ErrorResponse (FATAL, SQLSTATE 53300) carrying `message`, after answering 'N' to an
 * SSL or GSS request, instead of a connection closed without a word (psql's "server closed the
 * connection unexpectedly"). `onRefused` hears of each, with the client's address.
 */
export function startOneClientGate(options: {
  host: string;
  port: number;
  target: string;
  message: string;
  onRefused: (client: string) => void;
}): Promise<OneClientGate> {
  let client: net.Socket | undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy()); // the client went away: nothing to report
    if (client) {
      options.onRefused(`${socket.remoteAddress}:${socket.remotePort}`);
      refuse(socket, options.message);
      return;
    }
    client = socket;
    const upstream = net.connect(options.target);
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      socket.destroy();
    });
    upstream.on('error', () => upstream.destroy());
    socket.on('close', () => {
      if (client === socket) client = undefined;
      upstream.destroy();
    });
    socket.pipe(upstream);
    upstream.pipe(socket);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            for (const socket of sockets) socket.destroy();
          }),
      });
    });
  });
}

/** Read the client's startup (answering 'N' to SSL or GSS negotiation), then answer a FATAL error and close. */
function refuse(socket: net.Socket, message: string): void {
  let buffer = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), REFUSE_TIMEOUT_MS);
  socket.on('close', () => clearTimeout(timer));
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 8) {
      const length = buffer.readInt32BE(0);
      if (length === 8 && NEGOTIATION_CODES.has(buffer.readInt32BE(4))) {
        socket.write('N');
        buffer = buffer.subarray(8);
        continue;
      }
      if (buffer.length < length) return;
      socket.end(toErrorResponse(message));
      buffer = Buffer.alloc(0);
      return;
    }
  });
}

/** A PostgreSQL ErrorResponse message ('E'): severity FATAL, SQLSTATE 53300, the message. */
function toErrorResponse(message: string): Buffer {
  const fields = Buffer.concat(
    [
      ['S', 'FATAL'],
      ['V', 'FATAL'],
      ['C', TOO_MANY_CONNECTIONS],
      ['M', message],
    ].map(([code, value]) => Buffer.from(`${code}${value}\0`, 'utf8')),
  );
  const body = Buffer.concat([fields, Buffer.from([0])]);
  const header = Buffer.alloc(5);
  header.write('E', 0);
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}
