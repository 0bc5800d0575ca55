/**
 * Live token feeds of generations started with `startGeneration`, for the `generation(id)` subscription. A feed
 * keeps what it has seen, so a subscriber that arrives after the first tokens still gets the whole stream; it is
 * dropped a while after the generation ends. In-process only (see DESIGN §9 for a shared pub/sub).
 */
export type FeedItem =
  | { readonly kind: 'token'; readonly content: string; readonly reasoning: string | null }
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
  readonly items: FeedItem[];
  readonly listeners: Set<() => void>;
  done: boolean;
}

export interface GenerationFeeds {
  open(generationId: string, owner: FeedOwner): void;
  push(generationId: string, item: FeedItem): void;
  owner(generationId: string): FeedOwner | undefined;
  /** Every item from the start, then live ones, ending after `done`. Null for an unknown (or expired) feed. */
  subscribe(generationId: string, signal?: AbortSignal): AsyncGenerator<FeedItem> | null;
}

export const createGenerationFeeds = (options: { retainMs?: number } = {}): GenerationFeeds => {
  const feeds = new Map<string, Feed>();
  const retainMs = options.retainMs ?? 5 * 60_000;
  return {
    open(generationId, owner) {
      feeds.set(generationId, { owner, items: [], listeners: new Set(), done: false });
    },
    push(generationId, item) {
      const feed = feeds.get(generationId);
      if (!feed || feed.done) return;
      feed.items.push(item);
      if (item.kind === 'done') {
        feed.done = true;
        setTimeout(() => feeds.delete(generationId), retainMs).unref();
      }
      for (const listener of feed.listeners) listener();
    },
    owner: (generationId) => feeds.get(generationId)?.owner,
    subscribe(generationId, signal) {
      const feed = feeds.get(generationId);
      if (!feed) return null;
      return (async function* () {
        let index = 0;
        for (;;) {
          while (index < feed.items.length) {
            const item = feed.items[index++]!;
            yield item;
            if (item.kind === 'done') return;
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
