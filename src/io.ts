/** Where a command prints: machine logs and results on stdout, sentences for people on stderr. */
export interface Io {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** stdout is a terminal: logs default to `pretty` (else JSON lines). Absent = not a terminal. */
  stdoutIsTTY?: boolean;
  /** stderr is a terminal: a long sync shows a progress bar there (else `progress` log lines). */
  stderrIsTTY?: boolean;
}

/** The process's own streams. */
export const processIo: Io = {
  stdout: (line) => process.stdout.write(line + '\n'),
  stderr: (line) => process.stderr.write(line + '\n'),
  stdoutIsTTY: process.stdout.isTTY === true,
  stderrIsTTY: process.stderr.isTTY === true,
};
