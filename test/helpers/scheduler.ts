import type { CronTask, CronTaskOptions, Scheduler } from '../../src/worker/scheduler.js';

/** A scheduler whose ticks the test fires: `tick(name)` instead of waiting for the clock. */
export interface TestScheduler extends Scheduler {
  /** The tasks made so far, by name. */
  readonly tasks: ReadonlyMap<string, { expression: string; timezone: string; status(): string }>;
  /** The next run every task reports (the clock does not move it). */
  nextRun(): Date;
  /**
   * Fires one tick of the task `name` once it has started, as node-cron would: with `noOverlap`, a
   * tick while the previous tick's run is going is skipped (`onOverlap` is told either way).
   * Resolves when the tick's run is done (at once when skipped), rejects with the run's error.
   */
  tick(name: string): Promise<void>;
}

interface Task {
  expression: string;
  timezone: string;
  status(): string;
  run: () => Promise<void>;
  options: CronTaskOptions;
  state: 'stopped' | 'idle' | 'running' | 'destroyed';
  /** The previous tick's run while it goes. */
  pending?: Promise<void>;
}

/**
 * A hand-driven `Scheduler` for tests. Its tasks report the same next runs throughout, `intervalMs`
 * apart (default one minute; the worker's health rule reads the interval) from the scheduler's
 * creation; `tick` waits at most 10 s for the task to start.
 */
export function createTestScheduler(options: { intervalMs?: number } = {}): TestScheduler {
  const intervalMs = options.intervalMs ?? 60_000;
  const origin = Date.now();
  const tasks = new Map<string, Task>();
  const started = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  const whenStarted = (name: string) => {
    let entry = started.get(name);
    if (!entry) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      entry = { promise, resolve };
      started.set(name, entry);
    }
    return entry;
  };
  const nextRuns = (count: number): Date[] => Array.from({ length: count }, (_, i) => new Date(origin + (i + 1) * intervalMs));

  return {
    tasks,
    nextRun: () => nextRuns(1)[0]!,
    createTask(expression: string, run: () => Promise<void>, taskOptions: CronTaskOptions): CronTask {
      if (tasks.has(taskOptions.name)) throw new Error(`test scheduler: a second task named ${taskOptions.name}`);
      const task: Task = { expression, timezone: taskOptions.timezone, status: () => task.state, run, options: taskOptions, state: 'stopped' };
      tasks.set(taskOptions.name, task);
      return {
        async start() {
          if (task.state !== 'stopped') return;
          task.state = 'idle';
          whenStarted(taskOptions.name).resolve();
        },
        async destroy() {
          task.state = 'destroyed';
        },
        status: () => task.state,
        nextRun: () => (task.state === 'stopped' ? undefined : nextRuns(1)[0]),
        nextRuns,
      };
    },
    async tick(name) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`test scheduler: no task named ${name} started within 10 s`)), 10_000);
      });
      try {
        await Promise.race([whenStarted(name).promise, timeout]);
      } finally {
        clearTimeout(timer);
      }
      const task = tasks.get(name)!;
      if (task.state === 'destroyed') throw new Error(`test scheduler: ${name} is destroyed`);
      if (task.pending) {
        task.options.onOverlap?.();
        if (task.options.noOverlap) return;
      }
      task.state = 'running';
      const run = task.run();
      task.pending = run;
      try {
        await run;
      } finally {
        if (task.pending === run) task.pending = undefined;
        if (task.state === 'running' && !task.pending) task.state = 'idle';
      }
    },
  };
}
