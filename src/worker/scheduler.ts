import cron from 'node-cron';

/** One schedule made by a `Scheduler`: stopped until `start`. */
export interface CronTask {
  start(): Promise<void>;
  /** No more ticks; a run in progress goes on (its caller waits for it). */
  destroy(): Promise<void>;
  /** `stopped` before start, `idle` or `running` (a tick's run going) while alive, `destroyed` after. */
  status(): string;
  /** When the next tick is due; undefined while stopped. */
  nextRun(): Date | undefined;
  /** The next `count` ticks from now. */
  nextRuns(count: number): Date[];
}

export interface CronTaskOptions {
  /** The IANA time zone the expression is read in. */
  timezone: string;
  /** The task's name in the scheduler's own log lines. */
  name: string;
  /** Skip a tick while the previous tick's run is still going (`onOverlap` is told either way). */
  noOverlap?: boolean;
  /** A tick came while the previous tick's run was still going. */
  onOverlap?: () => void;
  /** A tick did not fire on time (the process was busy or asleep); `at` is when it was due. */
  onMissed?: (at: Date) => void;
  /** Where the scheduler's own warnings and errors go. */
  logger: { warn(message: string): void; error(message: string): void };
}

/** Cron schedules, injected so the worker's tests fire ticks by hand instead of waiting for the clock. */
export interface Scheduler {
  /**
   * A task that calls `run` on each tick of the cron `expression` (five or six fields), with the
   * tick's scheduled time when the scheduler knows it (the job engine's ids are made of it).
   */
  createTask(expression: string, run: (scheduledAt?: Date) => Promise<void>, options: CronTaskOptions): CronTask;
}

/** node-cron: `noOverlap`, the time zone and missed ticks are its own. */
export const cronScheduler: Scheduler = {
  createTask(expression, run, options) {
    const { logger, onOverlap, onMissed } = options;
    const task = cron.createTask(expression, (context) => run(context.date), {
      timezone: options.timezone,
      name: options.name,
      noOverlap: options.noOverlap,
      logger: { info: () => {}, debug: () => {}, warn: (m) => logger.warn(String(m)), error: (m) => logger.error(String(m)) },
    });
    if (onOverlap) task.on('execution:overlap', () => onOverlap());
    // Without a listener node-cron warns about a missed tick itself.
    if (onMissed) task.on('execution:missed', (context) => onMissed(context.date));
    return {
      async start() {
        await task.start();
      },
      async destroy() {
        await task.destroy();
      },
      status: () => task.getStatus(),
      nextRun: () => task.getNextRun() ?? undefined,
      nextRuns: (count) => task.getNextRuns(count),
    };
  },
};
