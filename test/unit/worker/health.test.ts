import { describe, expect, it } from '@jest/globals';
import cron from 'node-cron';
import { scheduleIntervalMs, toHealth, type HealthInput } from '../../../src/worker/health.js';

const HOUR = 3_600_000;
const at = (iso: string) => new Date(`2026-12-01T${iso}Z`);
const base: HealthInput = {
  now: at('12:00:00'),
  scheduler: 'idle',
  startedAt: at('08:00:00'),
  lastSuccessAt: at('11:00:00'),
  lastRun: { id: 7, status: 'succeeded', durationMs: 10 * 60_000 },
  intervalMs: HOUR,
};

describe('toHealth', () => {
  it('is 200 within two intervals plus the last run duration of the last success', () => {
    expect(toHealth({ ...base, now: at('13:09:59') })).toMatchObject({
      httpStatus: 200,
      body: { status: 'ok', lastSuccessAt: '2026-12-01T11:00:00.000Z', successDueBy: '2026-12-01T13:10:00.000Z' },
    });
    const late = toHealth({ ...base, now: at('13:10:01'), lastRun: { id: 9, status: 'failed', durationMs: 10 * 60_000, errorCode: 'invalid_credentials' } });
    expect(late.httpStatus).toBe(503);
    expect(late.body.reason).toBe(
      'No successful run since 2026-12-01T11:00:00.000Z; one was due by 2026-12-01T13:10:00.000Z. The last run (#9) failed (invalid_credentials).',
    );
  });

  it('gives a worker that just started the same allowance, counted from its start', () => {
    const fresh = { ...base, startedAt: at('11:30:00'), lastSuccessAt: at('02:00:00'), lastRun: undefined };
    expect(toHealth({ ...fresh, now: at('13:29:00') }).httpStatus).toBe(200);
    const report = toHealth({ ...fresh, now: at('13:31:00') });
    expect(report.httpStatus).toBe(503);
    expect(report.body.reason).toBe(
      'No successful run since the worker started at 2026-12-01T11:30:00.000Z; one was due by 2026-12-01T13:30:00.000Z. No run has finished yet.',
    );
  });

  it('is 503 once the scheduler is stopped or destroyed, however recent the success', () => {
    expect(toHealth({ ...base, scheduler: 'running' }).httpStatus).toBe(200);
    expect(toHealth({ ...base, scheduler: 'destroyed' }).body).toMatchObject({ status: 'unhealthy', reason: 'The scheduler is destroyed.' });
  });
});

describe('toHealth with a full pass due after lost log history', () => {
  const fullPassDue = { historyLostAt: at('10:00:00'), reason: 'the stored checkpoint was refused' };
  const sentence =
    'Tenant log history was lost at 2026-12-01T10:00:00.000Z (the stored checkpoint was refused): changes since then may be missing until a full pass has started (the worker starts one; npm run sync also does).';

  it('is 200 and degraded, saying why, while the worker is otherwise healthy', () => {
    expect(toHealth(base)).toMatchObject({ httpStatus: 200, body: { status: 'ok', fullPassDue: false } });
    expect(toHealth(base).body.reason).toBeUndefined();
    expect(toHealth({ ...base, fullPassDue })).toMatchObject({ httpStatus: 200, body: { status: 'degraded', fullPassDue: true, reason: sentence } });
    expect(toHealth({ ...base, fullPassDue: { ...fullPassDue, reason: null } }).body.reason).toMatch(
      /^Tenant log history was lost at 2026-12-01T10:00:00\.000Z: changes/,
    );
  });

  it('is 503 when unhealthy as well, with both reasons', () => {
    const report = toHealth({ ...base, scheduler: 'destroyed', fullPassDue });
    expect(report).toMatchObject({ httpStatus: 503, body: { status: 'unhealthy', fullPassDue: true, reason: `The scheduler is destroyed. ${sentence}` } });
  });
});

describe('scheduleIntervalMs', () => {
  const interval = (expression: string) => scheduleIntervalMs(cron.createTask(expression, () => {}).getNextRuns(10));
  it('is the longest gap among the next runs, so a weekday schedule allows a weekend', () => {
    expect(interval('0 * * * *')).toBe(HOUR);
    expect(interval('*/15 * * * * *')).toBe(15_000);
    expect(interval('0 9 * * 1-5')).toBe(72 * HOUR);
  });
});
