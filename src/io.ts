/** Where a command prints: machine logs and results on stdout, sentences for people on stderr. */
export interface Io {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

/** The process's own streams. */
export const processIo: Io = {
  stdout: (line) => process.stdout.write(line + '\n'),
  stderr: (line) => process.stderr.write(line + '\n'),
};
