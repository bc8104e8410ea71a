/**
 * Why a token disappeared (issue #22): the one rule that both records the reason of each deletion
 * in the change history and tells the deletion guard which deletions are explained (every reason
 * but `unexplained`). Pure: the log entries come from the follower (src/pipeline/log-events.ts
 * turns each into a LogExplanation), the dates from the stored token.
 */
import { DELETION_REASONS, type DeletionReason } from '../warehouse/schema.js';

/** A reason a tenant log entry can give; `expired` and `unexplained` never come from one. */
export type LoggedReason = Exclude<DeletionReason, 'expired' | 'unexplained'>;

/** One log entry that explains a loss of a user's tokens, as far as deciding a reason needs it. */
export interface LogExplanation {
  /** The user whose tokens the entry explains the loss of. */
  userId: string;
  reason: LoggedReason;
  /** The entry's `log_id`, checked (src/auth0/log-id.ts); undefined if it had none. */
  logId?: string;
  /** For a Management API call (`sapi`): the client that made it, checked. */
  callerClientId?: string;
  /** The tokens the entry names (a revocation of one token); undefined: not one in particular. */
  tokenIds?: string[];
  /** The sessions the entry names (a logout, a session revoked); undefined: not one in particular. */
  sessionIds?: string[];
  /** The application whose tokens the entry is about (a revocation by client, the cleanup). */
  clientId?: string;
}

/** What the warehouse records for one deletion. */
export interface DeletionDecision {
  reason: DeletionReason;
  /** The log entry the reason was read from; null for `expired`, `unexplained` and a `pruned` inferred from the cap. */
  logId: string | null;
  /** The Management API client named by that entry, if any. */
  clientId: string | null;
}

/** The stored token, as far as its dates and links go (Auth0's JSON, as `raw` holds it). */
export interface DeletedToken {
  id: string;
  clientId?: string;
  sessionId?: string;
  createdAt?: string;
  expiresAt?: string;
  idleExpiresAt?: string;
}

/**
 * Auth0 keeps at most 200 active refresh tokens per user and application and removes the oldest
 * past it (logging `resource_cleanup`): a token that vanished while its application's listing
 * held this many, all newer than it, was pruned even when no entry says so.
 */
export const TOKENS_PER_APPLICATION = 200;

/** What the user's complete listing held for the token's application, for the cap rule. */
export interface ListedForClient {
  count: number;
  /** The oldest `created_at` among them (ISO 8601), if known. */
  oldestCreatedAt?: string;
}

/** What decideDeletionReason knows besides the log entries. */
export interface DecisionContext {
  now: Date;
  /** What the user's complete listing held for the token's application (tokens only: the 200-token cap). */
  listedForClient?: ListedForClient;
  /** The logs say the user was deleted (LogEvidence.deleted): its losses are explained even without the entry. */
  userDeleted?: boolean;
  /** Only entries giving one of these reasons explain; undefined: every reason. */
  reasons?: readonly LoggedReason[];
}

/**
 * What ends a session: its logout or revocation, or the user's deletion. An entry about the
 * user's tokens or one application does not explain a lost session.
 */
export const SESSION_ENDING_REASONS: readonly LoggedReason[] = ['session_revoked', 'user_deleted'];

/**
 * Decide why `token` was deleted, from `explanations` (the log entries seen for its user in this
 * run, in log order) and its own dates. The most specific word wins:
 * 1. an entry naming this token (`srrt` of it, a `sapi` delete of it);
 * 2. an entry naming its session (a logout, a session revoked);
 * 3. `expired`: past `expires_at` or `idle_expires_at` at `now`;
 * 4. an entry about the whole user or the token's application (`ferrt`, `sdu`, `resource_cleanup`, a revocation by user or client);
 * 5. `pruned` without an entry: its application's listing is at the 200-token cap and all newer than it;
 * 6. an entry about the user that names other tokens, sessions or applications: the guard has
 *    always taken any such entry as explaining its user's losses, and still does;
 * 7. `user_deleted` without an entry: the logs say the user was deleted (`context.userDeleted`)
 *    though the entry itself is not at hand (a retry recorded before reasons were kept);
 * 8. `unexplained`: what the deletion guard counts.
 * Among entries of equal rank the latest (by log order) wins. Only entries whose reason is in
 * `context.reasons` count, when given: what ends a session is narrower than what ends a token.
 * Never throws.
 */
export function decideDeletionReason(token: DeletedToken, explanations: readonly LogExplanation[], context: DecisionContext): DeletionDecision {
  const { reasons } = context;
  const counted = reasons ? explanations.filter((explanation) => reasons.includes(explanation.reason)) : explanations;
  const ranked = (rank: number) => bestOf(counted.filter((explanation) => rankOf(token, explanation) === rank));
  const fromEntry = ranked(3) ?? ranked(2);
  if (fromEntry) return fromEntry;
  if (hasExpired(token, context.now)) return { reason: 'expired', logId: null, clientId: null };
  const userWide = ranked(1);
  if (userWide) return userWide;
  if (beyondCap(token, context.listedForClient)) return { reason: 'pruned', logId: null, clientId: null };
  return ranked(0) ?? { reason: context.userDeleted ? 'user_deleted' : 'unexplained', logId: null, clientId: null };
}

/** Read a stored token's `raw` (Auth0's JSON) for the rule; fields that are not strings are left out. */
export function toDeletedToken(id: string, raw: unknown): DeletedToken {
  const token = raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
  const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  return {
    id,
    clientId: text(token.client_id),
    sessionId: text(token.session_id),
    createdAt: text(token.created_at),
    expiresAt: text(token.expires_at),
    idleExpiresAt: text(token.idle_expires_at),
  };
}

/** 3: names the token; 2: names its session; 1: the whole user or its application; 0: other tokens of the user. */
function rankOf(token: DeletedToken, explanation: LogExplanation): number {
  const { tokenIds, sessionIds, clientId } = explanation;
  if (tokenIds?.includes(token.id)) return 3;
  if (token.sessionId !== undefined && sessionIds?.includes(token.sessionId)) return 2;
  if (tokenIds === undefined && sessionIds === undefined && (clientId === undefined || clientId === token.clientId)) return 1;
  return 0;
}

function bestOf(explanations: readonly LogExplanation[]): DeletionDecision | undefined {
  const latest = explanations.at(-1);
  return latest && { reason: latest.reason, logId: latest.logId ?? null, clientId: latest.callerClientId ?? null };
}

function hasExpired(token: DeletedToken, now: Date): boolean {
  return [token.expiresAt, token.idleExpiresAt].some((at) => at !== undefined && Date.parse(at) <= now.getTime());
}

function beyondCap(token: DeletedToken, listed: ListedForClient | undefined): boolean {
  if (!listed || listed.count < TOKENS_PER_APPLICATION) return false;
  if (token.createdAt === undefined || listed.oldestCreatedAt === undefined) return false;
  return Date.parse(token.createdAt) <= Date.parse(listed.oldestCreatedAt);
}

/** The reasons a log entry can give: every reason but the two no entry states. */
const LOGGED_REASONS: ReadonlySet<string> = new Set(DELETION_REASONS.filter((reason) => reason !== 'expired' && reason !== 'unexplained'));

/**
 * Explanations stored as JSON (auth0.log_follow_retries.explanations) back to what the rule
 * takes, for `userId`: anything malformed is dropped, never trusted.
 */
export function toLogExplanations(userId: string, stored: readonly unknown[]): LogExplanation[] {
  const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  const texts = (value: unknown) => (Array.isArray(value) ? value.filter((x): x is string => typeof x === 'string') : undefined);
  return stored.flatMap((item): LogExplanation[] => {
    const object = item && typeof item === 'object' ? (item as Record<string, unknown>) : {};
    const reason = text(object.reason);
    if (reason === undefined || !LOGGED_REASONS.has(reason)) return [];
    const explanation: LogExplanation = { userId, reason: reason as LoggedReason };
    const [logId, callerClientId, clientId, tokenIds, sessionIds] = [
      text(object.logId),
      text(object.callerClientId),
      text(object.clientId),
      texts(object.tokenIds),
      texts(object.sessionIds),
    ];
    if (logId !== undefined) explanation.logId = logId;
    if (callerClientId !== undefined) explanation.callerClientId = callerClientId;
    if (clientId !== undefined) explanation.clientId = clientId;
    if (tokenIds !== undefined) explanation.tokenIds = tokenIds;
    if (sessionIds !== undefined) explanation.sessionIds = sessionIds;
    return [explanation];
  });
}
