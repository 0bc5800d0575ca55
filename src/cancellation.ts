/**
 * A per-call abort signal without Node's AbortController: the part of AbortSignal the upstream path uses.
 *
 * Why: on Node 20 every `new AbortController().signal` survives young collections, and so does what its listeners hold
 * (the upstream request and its answer). One per attempt was about half of what the request thread still promoted into
 * its old generation once src/objects.ts was applied (bench/README.md, issue 15, stop 23), and handed to
 * `http.request` it also costs Node's abort and end-of-stream bookkeeping. An AbortSignal satisfies `AbortLike`, so a
 * caller holding one (`AbortSignal.timeout`) passes it as it is.
 */
export interface AbortLike {
  readonly aborted: boolean;
  readonly reason: unknown;
  /** Called once, on abort; never if already aborted (as with AbortSignal). */
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Calls each abort listener, as an EventTarget does: the others still run when one throws, its error surfaces as uncaught. */
const callEach = (listeners: readonly (() => void)[]): void => {
  for (const listener of listeners) {
    try {
      listener();
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }
};

export class Cancellation implements AbortLike {
  aborted = false;
  reason: unknown = undefined;
  #listeners: (() => void)[] = [];

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.#listeners;
    this.#listeners = [];
    callEach(listeners);
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) this.#listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const at = this.#listeners.indexOf(listener);
    if (at >= 0) this.#listeners.splice(at, 1);
  }
}

/** What a request aborted through an `AbortLike` fails with (Node's own AbortError has this name, code and cause). */
export const abortError = (reason: unknown): Error => Object.assign(new Error('The operation was aborted', { cause: reason }), { name: 'AbortError', code: 'ABORT_ERR' });

/**
 * One signal that many calls listen to at once (the server's shutdown deadline: every call in flight then): listeners
 * in a Set, so the calls that come and go remove theirs in constant time.
 */
export class SharedCancellation implements AbortLike {
  aborted = false;
  reason: unknown = undefined;
  readonly #listeners = new Set<() => void>();

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = [...this.#listeners];
    this.#listeners.clear();
    callEach(listeners);
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) this.#listeners.add(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    this.#listeners.delete(listener);
  }
}

/**
 * A shutdown's grace period for what is not an HTTP request (a workflow step in flight): `signal` aborts `graceMs`
 * from now; `hurry` brings that closer (a second signal, as app.ts's drain does for the requests); `clear` once done.
 */
export const graceDeadline = (graceMs: number) => {
  const signal = new Cancellation();
  const startedAt = Date.now();
  let cutAt = startedAt + graceMs;
  const cut = () => signal.abort(new Error('the shutdown grace period is over'));
  let timer = setTimeout(cut, graceMs);
  return {
    signal: signal as AbortLike,
    hurry(sooner: number): void {
      if (startedAt + sooner >= cutAt) return;
      cutAt = startedAt + sooner;
      clearTimeout(timer);
      timer = setTimeout(cut, Math.max(0, cutAt - Date.now()));
    },
    clear: (): void => clearTimeout(timer),
  };
};
