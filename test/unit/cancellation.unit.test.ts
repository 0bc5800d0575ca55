import { describe, expect, it } from 'vitest';
import { Cancellation, abortError, type AbortLike } from '../../src/cancellation.js';

describe('Cancellation', () => {
  it('calls each listener once, in order, with the reason set; a removed listener or one added after is not called', () => {
    const cancel = new Cancellation();
    const calls: string[] = [];
    const removed = () => calls.push('removed');
    cancel.addEventListener('abort', () => calls.push(`first:${String(cancel.reason)}`));
    cancel.addEventListener('abort', removed);
    cancel.addEventListener('abort', () => calls.push('second'));
    cancel.removeEventListener('abort', removed);
    expect(cancel.aborted).toBe(false);
    cancel.abort('gone');
    cancel.abort('again');
    cancel.addEventListener('abort', () => calls.push('late'));
    expect(calls).toEqual(['first:gone', 'second']);
    expect(cancel.aborted).toBe(true);
    expect(cancel.reason).toBe('gone');
  });

  it('a throwing listener does not stop the others; its error surfaces as uncaught, as from an EventTarget', async () => {
    const cancel = new Cancellation();
    const calls: string[] = [];
    cancel.addEventListener('abort', () => {
      throw new Error('listener failed');
    });
    cancel.addEventListener('abort', () => calls.push('after'));
    const uncaught = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve));
    cancel.abort('x');
    expect(calls).toEqual(['after']);
    expect(((await uncaught) as Error).message).toBe('listener failed');
  });

  it('an AbortSignal is an AbortLike, and abortError carries the reason as Node’s AbortError does', () => {
    const signal: AbortLike = AbortSignal.abort('why');
    expect(signal.aborted).toBe(true);
    const error = abortError('why') as Error & { code: string };
    expect(error).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: 'why' });
  });
});
