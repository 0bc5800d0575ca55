/**
 * Live token feeds of generations started with `startGeneration`, for the `generation(id)` subscription. A feed
 * keeps what it has seen, so a subscriber that arrives after the first tokens still gets the whole stream; it is
 * dropped a while after the generation ends. In-process only (see DESIGN §9 for a shared pub/sub).
 *
 * What they keep is bounded: one generation's tokens by what the gateway lets a generation deliver (router.ts
 * maxOutputChars), and all feeds together by one budget for the process (`maxBytes`, GATEWAY_ANSWER_BUFFER_BYTES as
 * for whole answers being read). Past the budget the tokens of the feeds that ended longest ago go first, then the
 * oldest tokens of the feed being written: a subscriber whose next token is gone gets a `truncated` item saying how
 * many characters it misses, then what is still kept (its end always is).
 */
export type FeedItem =
  | { readonly kind: 'token'; readonly content: string; readonly reasoning: string | null }
  /** Only to a subscriber: `skipped` characters of content and reasoning before this point are no longer kept. */
  | { readonly kind: 'truncated'; readonly skipped: number }
  | {
      readonly kind: 'done';
      readonly status: 'completed' | 'failed' | 'cancelled';
      readonly model: string | null;
      readonly provider: string | null;
      readonly finishReason: string | null;
      readonly promptTokens: number;
      readonly completionTokens: number;
      readonly reasoningTokens: number;
      readonly cachedTokens: number;
      /** Nano-dollars. */
      readonly cost: number;
      readonly error: { readonly type: string; readonly message: string } | null;
    };

/** Whose generation a feed is: its account and the key that started it (a restricted key follows only its own). */
export interface FeedOwner {
  readonly accountId: string;
  readonly keyId: string | null;
}

interface Feed {
  readonly owner: FeedOwner;
  /** The items kept, from the absolute index `base` (those before it were dropped). */
  items: FeedItem[];
  base: number;
  /** Characters of content and reasoning in the dropped items. */
  dropped: number;
  /** What the kept items count against the budget. */
  bytes: number;
  readonly listeners: Set<() => void>;
  done: boolean;
}

export interface GenerationFeeds {
  open(generationId: string, owner: FeedOwner): void;
  push(generationId: string, item: FeedItem): void;
  owner(generationId: string): FeedOwner | undefined;
  /** Every item kept from the start (a `truncated` one for what is not), then live ones, ending after `done`. Null for an unknown (or expired) feed. */
  subscribe(generationId: string, signal?: AbortSignal): AsyncGenerator<FeedItem> | null;
}

/** The default budget of all feeds together: 256 MiB, as GATEWAY_ANSWER_BUFFER_BYTES's default. */
export const DEFAULT_FEED_BUFFER_BYTES = 256 * 1024 * 1024;
/** A token item's cost beyond its text (the object and its slot): an estimate, so that tiny tokens count too. */
const ITEM_BYTES = 64;

const charsOf = (item: FeedItem): number => (item.kind === 'token' ? item.content.length + (item.reasoning?.length ?? 0) : 0);
/** JavaScript strings: up to 2 bytes a character. */
const bytesOf = (item: FeedItem): number => ITEM_BYTES + 2 * charsOf(item);

export const createGenerationFeeds = (options: { retainMs?: number; maxBytes?: number } = {}): GenerationFeeds => {
  const feeds = new Map<string, Feed>();
  const retainMs = options.retainMs ?? 5 * 60_000;
  const maxBytes = options.maxBytes ?? DEFAULT_FEED_BUFFER_BYTES;
  let held = 0;
  /** Feeds that ended and are still kept, those that ended first first: their tokens are the first to go. */
  const ended = new Set<Feed>();

  /** Drop the first `count` items of a feed. */
  const dropHead = (feed: Feed, count: number) => {
    if (count <= 0) return;
    let bytes = 0;
    let chars = 0;
    for (let i = 0; i < count; i++) {
      const item = feed.items[i]!;
      bytes += bytesOf(item);
      chars += charsOf(item);
    }
    feed.items.splice(0, count);
    feed.base += count;
    feed.dropped += chars;
    feed.bytes -= bytes;
    held -= bytes;
  };

  /** Back within the budget: the ended feeds' tokens (their end stays), then the oldest of `writing`'s (its newest stays). */
  const makeRoom = (writing: Feed) => {
    for (const feed of ended) {
      if (held <= maxBytes) return;
      dropHead(feed, feed.items.length - 1);
    }
    if (held <= maxBytes) return;
    // Down to three quarters of the budget, so that a feed over it does not move its items on every token.
    const target = (maxBytes * 3) / 4;
    let count = 0;
    let freed = 0;
    while (count < writing.items.length - 1 && held - freed > target) freed += bytesOf(writing.items[count++]!);
    dropHead(writing, count);
  };

  const forget = (generationId: string, feed: Feed) => {
    feeds.delete(generationId);
    ended.delete(feed);
    held -= feed.bytes;
    feed.bytes = 0;
  };

  return {
    open(generationId, owner) {
      feeds.set(generationId, { owner, items: [], base: 0, dropped: 0, bytes: 0, listeners: new Set(), done: false });
    },
    push(generationId, item) {
      const feed = feeds.get(generationId);
      if (!feed || feed.done) return;
      const bytes = bytesOf(item);
      feed.items.push(item);
      feed.bytes += bytes;
      held += bytes;
      if (item.kind === 'done') {
        feed.done = true;
        ended.add(feed);
        setTimeout(() => forget(generationId, feed), retainMs).unref();
      }
      if (held > maxBytes) makeRoom(feed);
      for (const listener of feed.listeners) listener();
    },
    owner: (generationId) => feeds.get(generationId)?.owner,
    subscribe(generationId, signal) {
      const feed = feeds.get(generationId);
      if (!feed) return null;
      return (async function* () {
        /** The absolute index of the next item, and the characters before it (yielded or said skipped). */
        let index = 0;
        let seen = 0;
        for (;;) {
          if (index < feed.base) {
            const skipped = feed.dropped - seen;
            index = feed.base;
            seen = feed.dropped;
            yield { kind: 'truncated', skipped } satisfies FeedItem;
            continue;
          }
          if (index < feed.base + feed.items.length) {
            const item = feed.items[index - feed.base]!;
            index += 1;
            seen += charsOf(item);
            yield item;
            if (item.kind === 'done') return;
            continue;
          }
          if (signal?.aborted) return;
          await new Promise<void>((resolve) => {
            const wake = () => {
              feed.listeners.delete(wake);
              signal?.removeEventListener('abort', wake);
              resolve();
            };
            feed.listeners.add(wake);
            signal?.addEventListener('abort', wake, { once: true });
          });
        }
      })();
    },
  };
};
