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

/** Marks a process stream as watched, so a module loaded twice (Jest loads it per test file) adds one listener. */
const CLOSED = Symbol.for('auth0-refresh-token-sync:stream-closed');

/**
 * Aborted once `stream` is closed. A write to a pipe whose reader exited fails with EPIPE,
 * emitted as an 'error' event; unhandled, that event is a crash with a stack trace and exit 1
 * after work that succeeded. Any error on stdout or stderr (EPIPE, EBADF, EIO when the terminal
 * went away) means nobody reads it any more: there is nowhere left to report it.
 */
function closedSignal(stream: NodeJS.WriteStream): AbortSignal {
  const watched = stream as NodeJS.WriteStream & { [CLOSED]?: AbortController };
  if (!watched[CLOSED]) {
    const closed = new AbortController();
    watched[CLOSED] = closed;
    stream.on('error', () => closed.abort());
  }
  return watched[CLOSED].signal;
}

/**
 * Write lines to a process stream until it is closed; then drop them. Node ignores SIGPIPE, so
 * this is where a Unix tool's "stop writing, keep the exit code" happens.
 */
function guardedWrite(stream: NodeJS.WriteStream): (line: string) => void {
  const closed = closedSignal(stream);
  return (line) => {
    if (!closed.aborted && !stream.destroyed) stream.write(line + '\n');
  };
}

/** The process's own streams; a closed one is no longer written (see guardedWrite). */
export const processIo: Io = {
  stdout: guardedWrite(process.stdout),
  stderr: guardedWrite(process.stderr),
  stdoutIsTTY: process.stdout.isTTY === true,
  stderrIsTTY: process.stderr.isTTY === true,
  stdoutClosed: closedSignal(process.stdout),
};
