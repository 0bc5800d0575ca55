/** What the request thread hands the storage thread at start (see storageThread.ts and storageWorker.ts). */
export interface StorageWorkerData {
  readonly dir: string;
  /**
   * Three Int32s: the request thread's commit counter (APPENDS), whether the storage thread waits for it (ARMED), and
   * whether the request thread waits for the read models to reach a position (URGENT: apply what gathered now).
   */
  readonly appends: SharedArrayBuffer;
  /**
   * One BigInt64 (index ACKNOWLEDGED): the highest position the request thread acknowledged, durable with
   * EVENTSTORE_SYNC=full. The storage thread reads no further, so no read model shows an event a power loss could
   * still take back.
   */
  readonly acknowledged: SharedArrayBuffer;
  /** Tests only: see eventStore/eventStoreWrapper.ts. */
  readonly eventStoreWrapper?: string;
}

export const APPENDS = 0;
export const ARMED = 1;
export const URGENT = 2;
export const ACKNOWLEDGED = 0;
