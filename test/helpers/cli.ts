import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  /** Output so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when the process has exited (it is killed after `timeoutMs`). */
  done: Promise<CliRun>;
  /** Resolves once stdout contains `text`. */
  waitFor(text: string): Promise<void>;
}

export interface CliOptions {
  /** Kill the process after this long (default 20 s). */
  timeoutMs?: number;
  /** Arguments for node before the script (`--import ./test/helpers/print-peak-rss.ts`). */
  nodeArgs?: string[];
  /**
   * Close our end of this stream at once, as `| head -1` does once it has its line: every
   * write of the child's to it then fails with EPIPE.
   */
  close?: 'stdout' | 'stderr';
  /** The program to run (default the CLI, src/cli/main.ts; sandbox/demo.ts for the demo). */
  script?: string;
}

/** Start the CLI (or `options.script`) in a real child process, as `npm run <command>` would, with only `env` set. */
export function startCli(args: string[], env: Record<string, string | undefined>, options: CliOptions = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', ...(options.nodeArgs ?? []), options.script ?? 'src/cli/main.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const w of waiters.filter((w) => stdout.includes(w.text))) w.resolve();
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  if (options.close) child[options.close]!.destroy();
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  const done = new Promise<CliRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    done,
    waitFor: (text) =>
      stdout.includes(text)
        ? Promise.resolve()
        : Promise.race([
            new Promise<void>((resolve) => waiters.push({ text, resolve })),
            done.then(() => {
              throw new Error(`exited before printing "${text}": ${stderr}`);
            }),
          ]),
  };
}

/** Run `src/cli/main.ts` to completion in a child process. */
export function runCli(args: string[], env: Record<string, string | undefined>, options: CliOptions = {}): Promise<CliRun> {
  return startCli(args, env, options).done;
}
