import type { Auth0Client } from '../auth0/client.js';
import { Auth0Error, saysUnavailable } from '../auth0/errors.js';
import { SESSIONS_ROUTE, SESSIONS_SCOPE } from '../auth0/sessions.js';
import type { SessionsSetting } from '../core/config.js';
import type { Logger } from '../core/log.js';

/** What to do with an error from one user's session listing. */
export type SessionsVerdict = { off: true } | { off: false; error: unknown };

/**
 * Whether a run lists each user's sessions beside its tokens (`SYNC_SESSIONS`, issue #22),
 * decided once per run and said in one log line:
 * - `off`: never; the run sends exactly the requests it sent before sessions existed.
 * - `on`: always; the client requires `read:sessions` of its access token (missing_scope
 *   otherwise), and a tenant without the route stops the run, naming SYNC_SESSIONS.
 * - `auto` (the default): when the access token's scopes include `read:sessions` (read from the
 *   token the first listing fetched: no extra request). A tenant that then answers the route as
 *   absent or refused (404 that is not "no such user", 403, 400 naming the feature) turns sessions
 *   off for the rest of the run, with one line; the users it hit keep their stored sessions.
 */
export interface SessionsSwitch {
  /** Whether to list the next user's sessions. Resolves the `auto` setting on first call. */
  enabled(client: Auth0Client, signal?: AbortSignal): Promise<boolean>;
  /** The decision so far: undefined before the first user. */
  readonly state: boolean | undefined;
  /** Judge an error from a session listing: `off` (the route is not there; sessions off from now on) or the error to report. */
  judge(error: unknown): SessionsVerdict;
}

/** `off` needs no switch: the run lists no session at all. */
export function createSessionsSwitch(setting: Exclude<SessionsSetting, 'off'>, logger: Logger): SessionsSwitch {
  let state: boolean | undefined;
  let deciding: Promise<boolean> | undefined;

  async function decide(client: Auth0Client, signal?: AbortSignal): Promise<boolean> {
    if (setting === 'on') {
      logger.info(`sessions: on (SYNC_SESSIONS=on): listing each user's sessions through ${SESSIONS_ROUTE}`, { sessions: 'on' });
      return true;
    }
    const scopes = await client.grantedScopes(signal);
    const on = scopes?.includes(SESSIONS_SCOPE) ?? false;
    logger.info(
      on
        ? `sessions: on (SYNC_SESSIONS=auto and the access token grants ${SESSIONS_SCOPE})`
        : `sessions: off (SYNC_SESSIONS=auto and the access token lacks ${SESSIONS_SCOPE}; grant it to sync sessions)`,
      { sessions: on ? 'on' : 'off' },
    );
    return on;
  }

  return {
    get state() {
      return state;
    },
    async enabled(client, signal) {
      if (state !== undefined) return state;
      deciding ??= decide(client, signal).then(
        (on) => {
          state ??= on;
          return state;
        },
        (error: unknown) => {
          deciding = undefined; // decided again by the next user (the token fetch failed: the run likely stops anyway)
          throw error;
        },
      );
      return deciding;
    },
    judge(error) {
      const absent = saysUnavailable(error, { forbiddenCounts: true }) || (error instanceof Auth0Error && error.code === 'missing_scope');
      if (!absent) return { off: false, error };
      if (setting === 'auto') {
        if (state !== false) {
          state = false;
          logger.warn(`sessions: off for this run: ${SESSIONS_ROUTE} is not available to this client (SYNC_SESSIONS=auto); tokens are synced as before`, {
            sessions: 'off',
            answer: error instanceof Auth0Error ? error.message : String(error),
          });
        }
        return { off: true };
      }
      const message = error instanceof Auth0Error ? error.message : String(error);
      return {
        off: false,
        error: new Auth0Error(
          error instanceof Auth0Error && error.code === 'missing_scope' ? 'missing_scope' : 'endpoint_unavailable',
          `${message}: ${SESSIONS_ROUTE} is not available to this client; grant ${SESSIONS_SCOPE}, or set SYNC_SESSIONS=auto or SYNC_SESSIONS=off.`,
          error instanceof Auth0Error ? error.status : undefined,
        ),
      };
    },
  };
}
