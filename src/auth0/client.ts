import http from 'node:http';
import https from 'node:https';
import got, { type CancelableRequest, type Got, type Progress, type Response } from 'got';
import type { Config } from '../core/config.js';
import { systemClock, type Clock } from '../core/clock.js';
import { rememberSecret, toSafeText } from '../core/upstream-text.js';
import { isFatal } from '../core/errors.js';
import { Auth0Error, describeRequestError, errorForStatus, tokenEndpointError } from './errors.js';
import { createRateLimiter, type RateLimiter } from './rate-limiter.js';

export interface Auth0Client {
  /**
   * GET a Management API path (e.g. `/api/v2/refresh-tokens`) and parse its JSON body.
   * Retries 408, 5xx, resets, timeouts and unparseable bodies with capped exponential
   * backoff and full jitter; waits out 429s without spending that budget; on a 401 renews the
   * access token, failing as `unauthorized` only when a second token fetched for this very
   * request is refused too.
   * A body over `maxResponseBytes` is cut off while it streams (`response_too_large`, not
   * retried). Throws Auth0Error, whose message holds only safe text (see upstream-text.ts).
   */
  getJson(path: string, query: Record<string, string | number>, signal?: AbortSignal): Promise<unknown>;
  /**
   * POST a JSON body to a Management API path (e.g. `/api/v2/jobs/users-exports`) and parse the
   * JSON answer (any 2xx). Same token, limiter and retries as `getJson`: only for calls that are
   * safe to repeat (a retried job creation at worst starts a second job).
   */
  postJson(path: string, body: unknown, signal?: AbortSignal): Promise<unknown>;
  /**
   * The scopes granted to the access token in use, fetching one when none is cached (so after a
   * first listing it costs no request): what `SYNC_SESSIONS=auto` decides by. Undefined when the
   * token answer named no `scope`.
   */
  grantedScopes(signal?: AbortSignal): Promise<readonly string[] | undefined>;
  /** HTTP requests sent so far (token endpoint included, retries included). */
  readonly requests: number;
  /**
   * `getJson` that also returns the answer's headers (the tenant logs' `Link`), through the
   * same token, limiter and retries.
   */
  getJsonWithHeaders(path: string, query: Record<string, string | number>, signal?: AbortSignal): Promise<JsonWithHeaders>;
  /**
   * Closes every socket, which also drops the requests in flight (they fail as network errors,
   * and their callers find their signal aborted). Cheaper than an abort listener per request,
   * which got would add and remove thousands of times a second.
   */
  close(): void;
}

export interface Auth0ClientOptions {
  clock?: Clock;
  random?: () => number;
  limiter?: RateLimiter;
  /** Retries after the first attempt for transient failures. */
  maxRetries?: number;
  /** Backoff: first delay and cap, in milliseconds. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** 429 waits allowed for one request before it fails as `rate_limited`. */
  maxRateLimitWaits?: number;
  /** Sockets per protocol; the pipeline sizes this to its concurrency. */
  maxSockets?: number;
  /** Scopes the access token must grant, checked when it is issued; default `read:refresh_tokens`. */
  requiredScopes?: readonly string[];
  /**
   * Where the access token is kept. Clients that share one (the worker's follows and passes)
   * fetch one token for all of them instead of one each; share it only among clients that
   * require the same scopes, as the scopes are checked when a token is fetched.
   */
  tokens?: TokenCache;
  /**
   * Called after every request with its HTTP status (undefined when no answer came: a reset or
   * a timeout) and the limiter's current pace, requests per second. For metrics; must not throw.
   */
  onResponse?: (status: number | undefined, pace: number) => void;
}

/** 401s one request may meet before it fails as `unauthorized`, however the tokens turn over. */
const MAX_RENEWALS = 5;

export interface JsonWithHeaders {
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}

interface CachedToken {
  value: string;
  /** When to stop using it, in epoch ms: a little before `expires_in` runs out. */
  renewAt: number;
  /** The answer's `scope`, split; undefined when it named none. */
  scopes?: readonly string[];
}

/** The access token of one set of credentials, and the request fetching the next one. */
export interface TokenCache {
  token?: CachedToken;
  inFlight?: Promise<CachedToken>;
}

export const createTokenCache = (): TokenCache => ({});

const REQUIRED_SCOPE = 'read:refresh_tokens';

export function createAuth0Client(config: Config['auth0'], options: Auth0ClientOptions = {}): Auth0Client {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const limiter = options.limiter ?? createRateLimiter(clock, { maxRps: config.maxRps });
  const maxRetries = options.maxRetries ?? 6;
  const backoffBaseMs = options.backoffBaseMs ?? 250;
  const backoffCapMs = options.backoffCapMs ?? 10_000;
  const maxRateLimitWaits = options.maxRateLimitWaits ?? 50;
  const maxResponseBytes = config.maxResponseBytes;
  const requiredScopes = options.requiredScopes ?? [REQUIRED_SCOPE];
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 16 };
  // Any answer may echo what we sent; scrubbed from every upstream text from now on.
  rememberSecret(config.clientSecret.reveal());
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);

  const httpClient: Got = got.extend({
    timeout: { request: config.timeoutMs },
    retry: { limit: 0 }, // retries live in `withRetries` below, the one place for them
    throwHttpErrors: false,
    followRedirect: false,
    responseType: 'text',
    // Auth0 answers a few kilobytes of JSON; plain bodies spare a zlib stream per request.
    decompress: false,
    agent: { http: httpAgent, https: httpsAgent },
    headers: { 'user-agent': 'auth0-refresh-token-sync' },
  });

  let requests = 0;
  const tokens = options.tokens ?? createTokenCache();

  /**
   * Send one request; network failures become Auth0Error('network_error'). A body larger than
   * `maxResponseBytes` (announced or streamed) is cut off as it arrives, so a hostile answer
   * costs at most that much memory, and fails as `response_too_large`.
   */
  async function send(what: string, run: () => CancelableRequest<Response<string>>): Promise<Response<string>> {
    requests += 1;
    const request = run();
    let tooLarge = false;
    request.on('downloadProgress', (progress: Progress) => {
      if (!tooLarge && (progress.transferred > maxResponseBytes || (progress.total ?? 0) > maxResponseBytes)) {
        tooLarge = true;
        request.cancel();
      }
    });
    let response: Response<string>;
    try {
      response = await request;
    } catch (error) {
      options.onResponse?.(undefined, limiter.rate);
      if (tooLarge) {
        throw new Auth0Error('response_too_large', `${what} answered with a body over ${maxResponseBytes} bytes (AUTH0_MAX_RESPONSE_BYTES); it was cut off`);
      }
      throw new Auth0Error('network_error', `${what} failed: ${describeRequestError(error)}`);
    }
    options.onResponse?.(response.statusCode, limiter.rate);
    return response;
  }

  /** Run `attempt` until it succeeds or fails with an error that is not retryable. */
  async function withRetries<T>(attempt: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let retry = 0; ; retry += 1) {
      signal?.throwIfAborted();
      try {
        return await attempt();
      } catch (error) {
        if (!(error instanceof Auth0Error) || !error.retryable || retry >= maxRetries) {
          throw error;
        }
        const ceiling = Math.min(backoffCapMs, backoffBaseMs * 2 ** retry);
        await clock.sleep(Math.round(random() * ceiling), signal);
      }
    }
  }

  /**
   * One access token from the token endpoint. Of an answer that is not a 200 only the status
   * and the OAuth error are kept (`tokenEndpointError`); 408/429/5xx and network failures are
   * retried, then `token_unavailable`; every other failure is fatal.
   */
  async function fetchToken(): Promise<CachedToken> {
    const what = 'POST /oauth/token';
    const issuedAt = clock.now();
    const response = await withRetries(() =>
      send(what, () =>
        httpClient.post(`${config.baseUrl}/oauth/token`, {
          json: {
            grant_type: 'client_credentials',
            client_id: config.clientId,
            client_secret: config.clientSecret.reveal(),
            audience: config.audience,
          },
        }),
      ).then((res) => {
        // The token endpoint (Authentication API) has limits of its own; a 429 there is backed off.
        if (res.statusCode !== 200) throw tokenEndpointError(res.statusCode, res.body, what);
        return res;
      }),
    ).catch((error: unknown) => {
      // A token endpoint that keeps failing, answers too much or answers garbage dooms every user.
      throw error instanceof Auth0Error && !isFatal(error) ? tokenUnavailable(error) : error;
    });
    let body: Record<string, unknown>;
    try {
      body = parseJson(response.body, what) as Record<string, unknown>;
    } catch (error) {
      throw tokenUnavailable(error as Auth0Error);
    }
    if (typeof body?.access_token !== 'string' || !body.access_token) {
      throw tokenUnavailable(new Auth0Error('bad_response', `${what} answered without an access_token`));
    }
    // Before anything else reads the answer: from now on it is scrubbed wherever it turns up.
    rememberSecret(body.access_token);
    const missingScope = typeof body.scope === 'string' ? requiredScopes.find((s) => !(body.scope as string).split(' ').includes(s)) : undefined;
    if (missingScope !== undefined) {
      throw new Auth0Error(
        'missing_scope',
        `The access token lacks the ${missingScope} scope (granted: ${toSafeText(String(body.scope), 256) || 'none'}); grant it to the client in the Auth0 dashboard.`,
      );
    }
    const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 86_400;
    const lifetimeMs = expiresIn * 1000;
    // Renew a little early, never later than 60 s before expiry (node-auth0 uses 10 s).
    const scopes = typeof body.scope === 'string' ? body.scope.split(' ').filter(Boolean) : undefined;
    return { value: body.access_token, renewAt: issuedAt + lifetimeMs - Math.min(60_000, lifetimeMs / 10), scopes };
  }

  /**
   * The cached access token, or a new one; callers share one in-flight request. `fresh` says
   * the token was fetched for this call (not taken from the cache).
   */
  async function accessToken(): Promise<{ current: CachedToken; fresh: boolean }> {
    const cached = tokens.token;
    if (cached && clock.now() < cached.renewAt) return { current: cached, fresh: false };
    return { current: await renewToken(), fresh: true };
  }

  function renewToken(): Promise<CachedToken> {
    tokens.inFlight ??= fetchToken().then(
      (fresh) => {
        tokens.token = fresh;
        tokens.inFlight = undefined;
        return fresh;
      },
      (error: unknown) => {
        tokens.inFlight = undefined;
        throw error;
      },
    );
    return tokens.inFlight;
  }

  async function getJson(path: string, query: Record<string, string | number>, signal?: AbortSignal): Promise<unknown> {
    return (await getJsonWithHeaders(path, query, signal)).body;
  }

  function getJsonWithHeaders(path: string, query: Record<string, string | number>, signal?: AbortSignal): Promise<JsonWithHeaders> {
    const url = `${config.baseUrl}${path}?${new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]))}`;
    return requestJson('GET', path, url, undefined, signal);
  }

  async function postJson(path: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
    return (await requestJson('POST', path, `${config.baseUrl}${path}`, body, signal)).body;
  }

  async function requestJson(method: 'GET' | 'POST', path: string, url: string, json: unknown, signal?: AbortSignal): Promise<JsonWithHeaders> {
    const what = `${method} ${path}`;
    let renewals = 0;
    let freshRefused = false;
    let rateLimitWaits = 0;
    return withRetries(async () => {
      for (;;) {
        await limiter.acquire(signal);
        // Taken after the rate-limit wait, right before sending: a token taken before could
        // expire while its request waits for a slot (issue #8).
        const { current, fresh } = await accessToken();
        const response = await send(what, () =>
          // A URL string built here: got's searchParams and prefixUrl merging cost more than the request.
          method === 'GET'
            ? httpClient.get(url, { headers: { authorization: `Bearer ${current.value}` } })
            : httpClient.post(url, { headers: { authorization: `Bearer ${current.value}` }, json }),
        );
        limiter.observe(response.statusCode, response.headers);
        if (response.statusCode === 200 || (method === 'POST' && response.statusCode >= 200 && response.statusCode < 300)) {
          return { body: parseJson(response.body, what), headers: response.headers };
        }
        if (response.statusCode === 429 && rateLimitWaits < maxRateLimitWaits) {
          rateLimitWaits += 1; // a wait, not a failure: the limiter holds the next acquire()
          continue;
        }
        if (response.statusCode === 401 && !(fresh && freshRefused) && renewals < MAX_RENEWALS) {
          // Expired or revoked mid-run: retry with the newest token, fetching one if the refused
          // token is still the newest. A token fetched for this request being refused means the
          // credentials themselves are no good, unless a revocation landed between its fetch and
          // its use: so that takes two fresh tokens refused.
          renewals += 1;
          if (fresh) freshRefused = true;
          if (tokens.token === current) tokens.token = undefined;
          continue;
        }
        throw errorForStatus(response.statusCode, response.body, what);
      }
    }, signal);
  }

  return {
    getJson,
    getJsonWithHeaders,
    postJson,
    async grantedScopes(signal) {
      signal?.throwIfAborted();
      return (await accessToken()).current.scopes;
    },
    get requests() {
      return requests;
    },
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

/** The token endpoint kept failing: no user can be synced without a token, so this is fatal. */
function tokenUnavailable(error: Auth0Error): Auth0Error {
  return new Auth0Error('token_unavailable', `Could not get a Management API access token: ${error.message}`, error.status);
}

function parseJson(body: string, what: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new Auth0Error('bad_response', `${what} answered with a body that is not JSON (${body.length} bytes)`);
  }
}
