import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** Drop every connection and refuse new ones: the database is "gone". */
  kill(): Promise<void>;
  /**
   * The next time a connection sends a COMMIT after a statement matching `after`, let the server
   * commit, then cut that connection before the acknowledgement reaches the client: the commit
   * landed, and the client cannot know. Resolves once it happened.
   */
  loseCommitAck(after: RegExp): Promise<void>;
}

/** A loopback TCP proxy to `target`, so a test can take the database away mid-run. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let armed: { after: RegExp; done: () => void } | undefined;
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
    }
    let matched = false;
    let cutting: (() => void) | undefined;
    client.on('data', (chunk) => {
      upstream.write(chunk);
      const text = chunk.toString('latin1');
      if (armed && armed.after.test(text)) matched = true;
      // A simple-protocol Query message ('Q') of COMMIT, after the statement we wait for.
      if (armed && matched && chunk[0] === 0x51 && /^commit\b/i.test(text.slice(5))) {
        cutting = armed.done;
        armed = undefined;
      }
    });
    upstream.on('data', (chunk) => {
      if (!cutting) {
        client.write(chunk);
        return;
      }
      // The server has answered the COMMIT: it landed. The client never hears of it.
      const done = cutting;
      cutting = undefined;
      client.destroy();
      upstream.destroy();
      done();
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    async kill() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
    loseCommitAck(after) {
      return new Promise<void>((done) => (armed = { after, done }));
    },
  };
}
