/**
 * Calls and pushes between the request thread and the storage thread, over a worker's message port.
 *
 * Messages travel in batches, one `postMessage` each (see `flushOn`), so a busy thread wakes the other once per
 * batch, not once per call. Errors cross as their class
 * name and own properties and are rebuilt as instances of the same domain error class, so `instanceof` checks
 * (a conflict on append, a validation error) work on the caller's side.
 */
import * as errors from '../errors.js';

export interface Port {
  postMessage(value: unknown): void;
  on(event: 'message', listener: (value: unknown) => void): unknown;
}

type Message =
  | { readonly t: 'call'; readonly id: number; readonly op: string; readonly args: readonly unknown[] }
  | { readonly t: 'ok'; readonly id: number; readonly value: unknown }
  | { readonly t: 'err'; readonly id: number; readonly error: SerializedError }
  | { readonly t: 'push'; readonly channel: string; readonly payload: unknown };

interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  readonly props: Record<string, unknown>;
}

export type Handler = (...args: never[]) => unknown;

export interface Channel {
  call<T>(op: string, ...args: unknown[]): Promise<T>;
  push(channel: string, payload: unknown): void;
  /** Receive pushes on `channel`. */
  onPush(channel: string, listener: (payload: unknown) => void): void;
  /** Answer calls of `op`. A handler may return a value or a promise. */
  handle(op: string, handler: Handler): void;
  /** Reject every call still waiting, and every later one: the other side is gone. */
  failPending(error: Error): void;
}

const serializeError = (thrown: unknown): SerializedError => {
  // A full disk crosses as the domain error it is (the driver's SqliteError would arrive as a plain Error).
  const error = errors.asStorageError(thrown);
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), props: {} };
  const props: Record<string, unknown> = {};
  for (const key of Object.keys(error)) props[key] = (error as unknown as Record<string, unknown>)[key];
  return { name: error.name, message: error.message, ...(error.stack !== undefined && { stack: error.stack }), props };
};

const errorClasses = new Map<string, new (...args: never[]) => Error>(
  (Object.values(errors) as unknown[])
    .filter((value): value is new (...args: never[]) => Error => typeof value === 'function' && value.prototype instanceof Error)
    .map((cls) => [cls.name, cls]),
);

const deserializeError = (serialized: SerializedError): Error => {
  const cls = errorClasses.get(serialized.name) ?? Error;
  const error = Object.create(cls.prototype) as Error;
  Object.assign(error, serialized.props);
  Object.defineProperty(error, 'message', { value: serialized.message, writable: true, configurable: true });
  Object.defineProperty(error, 'name', { value: serialized.name, writable: true, configurable: true });
  if (serialized.stack !== undefined) Object.defineProperty(error, 'stack', { value: serialized.stack, writable: true, configurable: true });
  return error;
};

/**
 * `flush`: `turn` sends what one turn of the event loop produced (`setImmediate`): the request thread, where calls
 * come from many I/O callbacks of one poll phase. `microtask` sends as soon as the current task's promise jobs are
 * done: the storage thread, so replies leave before the projection runner's next batch takes the thread.
 */
export const createChannel = (port: Port, flushOn: 'turn' | 'microtask'): Channel => {
  let nextId = 1;
  const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  const handlers = new Map<string, Handler>();
  const pushListeners = new Map<string, (payload: unknown) => void>();
  let outbox: Message[] = [];
  let scheduled = false;
  let gone: Error | null = null;

  const flush = () => {
    scheduled = false;
    const batch = outbox;
    outbox = [];
    port.postMessage(batch);
  };
  const send = (message: Message) => {
    outbox.push(message);
    if (!scheduled) {
      scheduled = true;
      if (flushOn === 'turn') setImmediate(flush);
      else queueMicrotask(flush);
    }
  };

  const answer = (id: number, op: string, args: readonly unknown[]) => {
    const handler = handlers.get(op);
    if (!handler) {
      send({ t: 'err', id, error: serializeError(new Error(`Unknown storage operation ${op}`)) });
      return;
    }
    try {
      const result = (handler as (...a: readonly unknown[]) => unknown)(...args);
      if (result instanceof Promise) {
        result.then(
          (value) => send({ t: 'ok', id, value }),
          (error: unknown) => send({ t: 'err', id, error: serializeError(error) }),
        );
      } else send({ t: 'ok', id, value: result });
    } catch (error) {
      send({ t: 'err', id, error: serializeError(error) });
    }
  };

  port.on('message', (batch) => {
    for (const message of batch as Message[]) {
      switch (message.t) {
        case 'call':
          answer(message.id, message.op, message.args);
          break;
        case 'ok':
          waiting.get(message.id)?.resolve(message.value);
          waiting.delete(message.id);
          break;
        case 'err':
          waiting.get(message.id)?.reject(deserializeError(message.error));
          waiting.delete(message.id);
          break;
        case 'push':
          pushListeners.get(message.channel)?.(message.payload);
          break;
      }
    }
  });

  return {
    call<T>(op: string, ...args: unknown[]) {
      if (gone) return Promise.reject(gone);
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
        send({ t: 'call', id, op, args });
      });
    },
    push: (channel, payload) => send({ t: 'push', channel, payload }),
    onPush: (channel, listener) => void pushListeners.set(channel, listener),
    handle: (op, handler) => void handlers.set(op, handler),
    failPending(error) {
      gone = error;
      for (const { reject } of waiting.values()) reject(error);
      waiting.clear();
    },
  };
};
