/** Where a command prints: machine logs and results on stdout, sentences for people on stderr. */
export interface Io {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** stdout is a terminal: logs default to `pretty` (else JSON lines). Absent = not a terminal. */
  stdoutIsTTY?: boolean;
  /** stderr is a terminal: a long sync shows a progress bar there (else `progress` log lines). */
  stderrIsTTY?: boolean;
  /**
   * Aborted once stdout is closed (the reader went away: `| head -1` exited). Long-running
   * commands stop on it as they would on SIGTERM; one-shot commands finish their work. Absent =
   * stdout never closes (tests).
   */
  stdoutClosed?: AbortSignal;
}

/**
 * A process stream that stops being written once it is closed. A write to a pipe whose reader
 * exited fails with EPIPE, emitted as an 'error' event; unhandled, that event is a crash with a
 * stack trace and exit 1 after work that succeeded. Node ignores SIGPIPE, so this is where a
 * Unix tool's "stop writing, keep the exit code" happens: every later line is dropped.
 */
function guardedWrite(stream: NodeJS.WriteStream, onClosed: () => void): (line: string) => void {
  let closed = false;
  // Any error on stdout or stderr (EPIPE, EBADF, EIO when the terminal went away) means nobody
  // reads it any more: there is nowhere left to report it.
  stream.on('error', () => {
    if (closed) return;
    closed = true;
    onClosed();
  });
  return (line) => {
    if (!closed && !stream.destroyed) stream.write(line + '\n');
  };
}

const stdoutClosed = new AbortController();

/** The process's own streams; a closed one is no longer written (see guardedWrite). */
export const processIo: Io = {
  stdout: guardedWrite(process.stdout, () => stdoutClosed.abort()),
  stderr: guardedWrite(process.stderr, () => {}),
  stdoutIsTTY: process.stdout.isTTY === true,
  stderrIsTTY: process.stderr.isTTY === true,
  stdoutClosed: stdoutClosed.signal,
};
