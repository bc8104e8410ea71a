import { SingleBar } from 'cli-progress';
import { formatDuration } from '../core/duration.js';
import type { ProgressDisplay, RunProgress } from '../jobs/sync.js';

/**
 * The terminal's view of a sync (stderr, only when it is a terminal): users done of total, the
 * rate and the ETA. The JSON `progress` log lines carry the same numbers for machines.
 */
export function createProgressBar(stream: NodeJS.WritableStream = process.stderr): ProgressDisplay & { clearLine(): void } {
  const bar = new SingleBar({
    stream,
    format: 'users {bar} {value}/{total} | {rate}/s | ETA {etaText}',
    hideCursor: true,
    clearOnComplete: true,
    // Our own ETA (from the run's rate) replaces cli-progress's, which needs a steady update pace.
    etaBuffer: 1,
    // Redraw every frame, so the bar comes back at once below a log line written over it.
    forceRedraw: true,
    fps: 4,
  });
  let started = false;
  return {
    update(progress: RunProgress) {
      const payload = {
        rate: progress.usersPerSecond,
        etaText: progress.etaSeconds === null ? '?' : formatDuration(progress.etaSeconds * 1000),
      };
      const total = progress.total ?? progress.done;
      if (!started) {
        bar.start(total, progress.done, payload);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(progress.done, payload);
      }
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
    /** Before a log line goes to the same terminal: wipe the bar's line so the text starts clean. */
    clearLine() {
      if (started) stream.write('\r\u001b[2K');
    },
  };
}
