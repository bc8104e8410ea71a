import { Auth0Error } from './errors.js';

/**
 * The listing rules every per-user `from`/`take` route shares (refresh tokens through either
 * route, sessions): one place, so a guard added for one listing holds for all of them.
 */

/** One page of a cursor listing: its items, and the cursor of the next page (undefined at the end). */
export interface Page<T> {
  items: T[];
  next?: string;
}

export interface PageListing<T> {
  /** What is listed, for messages: `refresh tokens of auth0|123` ("Listing … did not end"). */
  what: string;
  /** One page: `from` is undefined for the first, then the previous page's `next`. */
  fetchPage(from: string | undefined): Promise<Page<T>>;
  /** Pages holding items before the listing fails as `too_many_pages` (SYNC_MAX_PAGES_PER_USER). */
  maxPages: number;
}

/**
 * The items of a listing, one page at a time, following `next` with `from`. Stops on a missing,
 * null or empty `next` or on an empty page: a real last page can still carry `next` (recorded in
 * go-auth0's test data). Throws Auth0Error `too_many_pages` past `maxPages` pages that hold
 * items, and `bad_response` when `next` equals the `from` just sent; errors of `fetchPage`
 * pass through.
 */
export async function* listPages<T>(listing: PageListing<T>): AsyncGenerator<T[]> {
  let from: string | undefined;
  for (let page = 1; ; page += 1) {
    const { items, next } = await listing.fetchPage(from);
    if (items.length === 0) return;
    // Counted on pages that hold items, so the empty page confirming the end is always allowed.
    if (page > listing.maxPages) {
      throw new Auth0Error('too_many_pages', `Listing ${listing.what} did not end after ${listing.maxPages} pages (SYNC_MAX_PAGES_PER_USER)`);
    }
    yield items;
    if (!next) return;
    // A tenant that ignores `from` answers the same page again: stop at once, not after maxPages.
    if (next === from) throw new Auth0Error('bad_response', `Listing ${listing.what} answered the same cursor twice: the listing does not advance`);
    from = next;
  }
}

/**
 * Every item of a listing, collected. `list` starts the listing from its first page; an expired
 * or invalid cursor (`cursor_expired`) starts it again, once, dropping what was collected so
 * nothing is counted twice. Any other error, or a second expiry, is thrown.
 */
export async function collectAll<T>(list: () => AsyncIterable<T[]>): Promise<T[]> {
  for (let restarted = false; ; restarted = true) {
    const items: T[] = [];
    try {
      for await (const page of list()) items.push(...page);
      return items;
    } catch (error) {
      if (restarted || !(error instanceof Auth0Error) || error.code !== 'cursor_expired') throw error;
    }
  }
}

/**
 * A `{[arrayKey]: [...], next?: string}` answer as a Page. Pure. Throws Auth0Error
 * `bad_response` for anything else: a body without the array is not "no items", since taking it
 * so would mark every stored item deleted. `route` names the route in the message.
 */
export function toObjectPage<T>(body: unknown, route: string, arrayKey: string): Page<T> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new Auth0Error('bad_response', `${route} answered with JSON that is not an object`);
  }
  const { [arrayKey]: items, next } = body as Record<string, unknown>;
  if (!Array.isArray(items)) throw new Auth0Error('bad_response', `${route} answered without a ${arrayKey} array`);
  if (next !== undefined && next !== null && typeof next !== 'string') {
    throw new Auth0Error('bad_response', `${route} answered with a next cursor that is not a string`);
  }
  return { items: items as T[], next: next || undefined };
}
