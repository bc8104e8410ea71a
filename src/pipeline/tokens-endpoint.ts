import { Auth0Error, saysUnavailable } from '../auth0/errors.js';
import { tokensEndpointRoute, type TokensEndpoint } from '../auth0/refresh-tokens.js';
import type { TokensEndpointSetting } from '../core/config.js';
import type { Logger } from '../core/log.js';

/** What to do with an error from one user's listing. */
export type EndpointVerdict = { retry: true } | { retry: false; error: unknown };

/**
 * Which route lists tokens, shared by every user fetched at once in a run (issue #12). With
 * `auto` it starts with the Early Access `GET /api/v2/refresh-tokens`; if that route's first
 * answers say it is not on this tenant, it switches to `GET /api/v2/users/{user_id}/refresh-tokens`
 * once, logs one line, and has the users that got those answers listed again.
 */
export interface TokensEndpointChoice {
  readonly setting: TokensEndpointSetting;
  /** The route to list the next user through. */
  current(): TokensEndpoint;
  /** The route the run lists through, once it has sent a listing; undefined before. */
  used(): TokensEndpoint | undefined;
  /** `endpoint` answered for a user (tokens, or Auth0's "the user does not exist"): it is there. */
  confirm(endpoint: TokensEndpoint): void;
  /**
   * Judge an error from listing a user through `endpoint`: `retry` (list the user again through
   * `current()`, which happens at most once per user), or the error to report, turned into a
   * fatal `endpoint_unavailable` when it says a route never seen working is not on the tenant.
   * Never turns anything into `user_not_found`, so a switch can never mark tokens deleted.
   */
  judge(endpoint: TokensEndpoint, error: unknown): EndpointVerdict;
}

const EA = 'refresh-tokens' satisfies TokensEndpoint;
const GA = 'users' satisfies TokensEndpoint;

export function createTokensEndpointChoice(setting: TokensEndpointSetting, logger: Logger): TokensEndpointChoice {
  let current: TokensEndpoint = setting === 'auto' ? EA : setting;
  let attempted = false;
  const confirmed = new Set<TokensEndpoint>();

  return {
    setting,
    current() {
      attempted = true;
      return current;
    },
    used: () => (attempted ? current : undefined),
    confirm(endpoint) {
      confirmed.add(endpoint);
    },
    judge(endpoint, error) {
      if (setting === 'auto' && endpoint === EA && saysUnavailable(error, { forbiddenCounts: true })) {
        // In flight when another user's answer switched the run: list this user again.
        if (current !== EA) return { retry: true };
        // The route answered before (tokens or "no such user"): this answer is one user's problem.
        if (!confirmed.has(EA)) {
          current = GA;
          logger.warn(
            `${tokensEndpointRoute(EA)} is not available on this tenant (Early Access); listing tokens through ${tokensEndpointRoute(GA)} from now on`,
            { tokensEndpoint: GA, answer: error.message },
          );
          return { retry: true };
        }
      }
      if (!confirmed.has(endpoint) && saysUnavailable(error, { forbiddenCounts: false })) {
        return { retry: false, error: unavailable(setting, endpoint, error) };
      }
      return { retry: false, error };
    },
  };
}

/** The one sentence that stops a run whose route is not on the tenant, naming what to set. */
function unavailable(setting: TokensEndpointSetting, endpoint: TokensEndpoint, error: Auth0Error): Auth0Error {
  const fix =
    endpoint === EA
      ? `the Early Access endpoint ${tokensEndpointRoute(EA)} is not available on this tenant; set AUTH0_TOKENS_ENDPOINT=users or AUTH0_TOKENS_ENDPOINT=auto`
      : setting === 'auto'
        ? `neither ${tokensEndpointRoute(EA)} nor ${tokensEndpointRoute(GA)} is available; check AUTH0_DOMAIN`
        : `${tokensEndpointRoute(GA)} is not available; check AUTH0_DOMAIN`;
  return new Auth0Error('endpoint_unavailable', `${error.message}: ${fix}.`, error.status);
}
