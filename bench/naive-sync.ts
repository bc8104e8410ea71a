/**
 * What a user would write in an afternoon, for comparison: one user at a time, follow `next`,
 * one INSERT … ON CONFLICT per row (token, device, resource server). Prints one JSON line.
 *   node --import tsx bench/naive-sync.ts --database-url URL --auth0 URL
 */
import { parseArgs } from 'node:util';
import pg from 'pg';

const { values } = parseArgs({ options: { 'database-url': { type: 'string' }, auth0: { type: 'string' } } });
const base = values.auth0!;
const client = new pg.Client({ connectionString: values['database-url'] });
await client.connect();
const started = performance.now();
const tokenAnswer = (await (
  await fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'test-client', client_secret: 'test-secret', audience: `${base}/api/v2/` }),
  })
).json()) as { access_token: string };
const headers = { authorization: `Bearer ${tokenAnswer.access_token}` };
const { rows: users } = await client.query<{ user_id: string }>('select user_id from auth0.users order by user_id');
let tokens = 0;
let requests = 1;
for (const { user_id: userId } of users) {
  let from: string | undefined;
  for (;;) {
    const url = new URL(`${base}/api/v2/refresh-tokens`);
    url.searchParams.set('user_id', userId);
    url.searchParams.set('take', '100');
    if (from) url.searchParams.set('from', from);
    requests += 1;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- an afternoon script, typed loosely on purpose
    const page = (await (await fetch(url, { headers })).json()) as { refresh_tokens: Record<string, any>[]; next?: string };
    for (const t of page.refresh_tokens) {
      tokens += 1;
      await client.query(
        `insert into auth0.refresh_tokens (id, user_id, client_id, session_id, rotating, created_at, idle_expires_at, expires_at,
           last_exchanged_at, metadata, raw, first_seen_at, last_changed_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now(), now())
         on conflict (id) do update set last_changed_at = now(), raw = excluded.raw, last_exchanged_at = excluded.last_exchanged_at`,
        [
          t.id,
          userId,
          t.client_id,
          t.session_id,
          t.rotating,
          t.created_at,
          t.idle_expires_at,
          t.expires_at,
          t.last_exchanged_at,
          t.refresh_token_metadata ? JSON.stringify(t.refresh_token_metadata) : null,
          JSON.stringify(t),
        ],
      );
      if (t.device) {
        const d = t.device;
        await client.query(
          `insert into auth0.refresh_token_devices values ($1, $2, $3, $4, $5, $6, $7)
           on conflict (token_id) do update set last_ip = excluded.last_ip, last_asn = excluded.last_asn, last_user_agent = excluded.last_user_agent`,
          [t.id, d.initial_ip, d.initial_asn, d.initial_user_agent, d.last_ip, d.last_asn, d.last_user_agent],
        );
      }
      for (const rs of t.resource_servers ?? []) {
        await client.query(
          `insert into auth0.refresh_token_resource_servers values ($1, $2, $3) on conflict (token_id, audience) do update set scopes = excluded.scopes`,
          [t.id, rs.audience, rs.scopes],
        );
      }
    }
    if (!page.next || page.refresh_tokens.length === 0) break;
    from = page.next;
  }
}
const seconds = (performance.now() - started) / 1000;
await client.end();
process.stdout.write(JSON.stringify({ seconds, users: users.length, tokens, requests, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) }) + '\n');
