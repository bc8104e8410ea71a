import type { ReportData } from '../../../src/report/queries.js';

/** What the queries read from an empty warehouse. */
export function emptyReportData(): ReportData {
  return {
    readAt: new Date('2026-12-04T09:00:00Z'),
    tenants: undefined,
    headline: {
      liveTokens: 0,
      users: 0,
      applications: 0,
      expiringSoon: 0,
      unused: 0,
      locationChanged: 0,
      asnChanged: 0,
      lastSuccessAt: null,
      runs: 0,
      unexplained24h: 0,
      liveSessions: 0,
      outlivingSession: 0,
      withoutSecondFactor: 0,
      freshnessSeconds: null,
    },
    perTenant: [],
    perClient: { top: [], rest: 0, restCount: 0 },
    perAudience: { top: [], rest: 0, restCount: 0 },
    changesPerDay: Array.from({ length: 90 }, (_, i) => ({ day: new Date(Date.UTC(2026, 8, 6 + i)).toISOString().slice(0, 10), created: 0, deleted: 0 })),
    ageBuckets: new Array<number>(8).fill(0),
    expiryBuckets: new Array<number>(8).fill(0),
    idleExpiryBuckets: new Array<number>(8).fill(0),
    rotating: { rotating: 0, nonRotating: 0, unknown: 0 },
    sessions: { withSession: 0, withoutSession: 0 },
    firstAsns: { top: [], rest: 0, restCount: 0 },
    lastAsns: { top: [], rest: 0, restCount: 0 },
    asnMoves: [],
    runsPerDay: [],
    deletionsPerDay: Array.from({ length: 30 }, (_, i) => ({ day: new Date(Date.UTC(2026, 10, 5 + i)).toISOString().slice(0, 10), reasons: {} })),
    sessionsHeld: false,
    sessionsPerClient: [],
    logFollow: [],
    expiringSoon: [],
    unused: [],
    locationChanged: [],
  };
}

export const HOSTILE = '<script>alert(1)</script>';

/** A warehouse whose every upstream string is hostile markup. */
export function hostileReportData(): ReportData {
  const data = emptyReportData();
  const at = new Date('2026-12-03T08:00:00Z');
  data.headline = {
    liveTokens: 3,
    users: 1,
    applications: 1,
    expiringSoon: 1,
    unused: 1,
    locationChanged: 1,
    asnChanged: 1,
    lastSuccessAt: at,
    runs: 1,
    unexplained24h: 1,
    liveSessions: 2,
    outlivingSession: 1,
    withoutSecondFactor: 1,
    freshnessSeconds: 3600,
  };
  // Two tenants, one with a hostile name (config refuses it; the page escapes it anyway).
  const tenant = { users: 1, applications: 1, expiringSoon: 0, unused: 0, locationChanged: 0, unexplained24h: 0, liveSessions: 1, runs: 1 };
  data.perTenant = [
    { ...tenant, tenant: 'prod-eu', liveTokens: 2, expiringSoon: 1, unused: 1, locationChanged: 1, lastSuccessAt: at, freshnessSeconds: 3600 },
    { ...tenant, tenant: HOSTILE, liveTokens: 1, users: 0, unexplained24h: 1, lastSuccessAt: null, freshnessSeconds: null },
  ];
  data.perClient = { top: [{ name: HOSTILE, tokens: 3 }], rest: 0, restCount: 0 };
  data.perAudience = { top: [{ name: `https://api/${HOSTILE}`, tokens: 2 }], rest: 0, restCount: 0 };
  data.changesPerDay[89] = { day: data.changesPerDay[89]!.day, created: 3, deleted: 1 };
  data.ageBuckets[1] = 3;
  data.expiryBuckets[7] = 3;
  data.idleExpiryBuckets[1] = 3;
  data.rotating = { rotating: 1, nonRotating: 2, unknown: 0 };
  data.sessions = { withSession: 1, withoutSession: 2 };
  data.firstAsns = { top: [{ name: `AS${HOSTILE}`, tokens: 3 }], rest: 0, restCount: 0 };
  data.lastAsns = { top: [{ name: '<img src=x onerror=alert(2)>', tokens: 3 }], rest: 0, restCount: 0 };
  data.asnMoves = [{ from: `AS${HOSTILE}`, to: '<img src=x onerror=alert(2)>', tokens: 1 }];
  data.runsPerDay = [
    { day: '2026-12-03', succeeded: 1, partial: 0, failed: 0, interrupted: 0, running: 0, medianSeconds: 2, maxSeconds: 2, requests: 4, usersFailed: 0 },
  ];
  data.deletionsPerDay[29] = { day: data.deletionsPerDay[29]!.day, reasons: { unexplained: 1, [HOSTILE]: 1 } };
  data.sessionsHeld = true;
  data.sessionsPerClient = [{ clientId: HOSTILE, sessions: 2, withoutSecondFactor: 1 }];
  data.logFollow = [{ tenant: 'prod-eu', lagSeconds: 12, updatedAt: at, lastEntryAt: at }];
  const id = `rt_${HOSTILE}_0123456789abcdef`;
  data.expiringSoon = [{ tenant: 'prod-eu', id, userId: `auth0|${HOSTILE}`, clientId: HOSTILE, expiresFirstAt: at, reason: 'idle' }];
  data.unused = [{ tenant: 'prod-eu', id, userId: `auth0|${HOSTILE}`, clientId: HOSTILE, lastUsedAt: at, unusedDays: 40 }];
  data.locationChanged = [
    {
      tenant: 'prod-eu',
      id,
      userId: `auth0|${HOSTILE}`,
      clientId: HOSTILE,
      initialAsn: `AS${HOSTILE}`,
      lastAsn: '<img src=x onerror=alert(2)>',
      initialIp: '"><script>alert(3)</script>',
      lastIp: '10.0.0.1',
      lastUserAgent: `Mozilla ${HOSTILE}\u001b[31m`,
      lastExchangedAt: at,
    },
  ];
  return data;
}
