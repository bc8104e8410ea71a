// An ISO-8601 date, optionally with a time and a zone: `2026-11-01`, `2026-11-01T10:00Z`,
// `2024-05-01T13:00:30.038+02:00`.
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-](\d{2}):?(\d{2}))?)?$/;

/**
 * Milliseconds since the epoch of an ISO-8601 date (or date-time) whose every part exists;
 * undefined otherwise. Date.parse alone accepts `2026-02-31` and rolls it over to March 3rd,
 * and takes year `0000`: here the year must be 0001 or later, the day must exist in its
 * month, and hours, minutes, seconds and the zone offset must be in range. A date-time
 * without a zone is read in local time, as Date.parse does. Pure.
 */
export function parseIsoDate(text: string): number | undefined {
  const match = ISO_DATE.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour = 0, minute = 0, second = 0, offsetHours = 0, offsetMinutes = 0] = match
    .slice(1)
    .map((part) => (part === undefined ? undefined : Number(part))) as number[];
  if (year! < 1 || month! < 1 || month! > 12 || day! < 1 || day! > daysInMonth(year!, month!)) return undefined;
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}
