/** What the request thread hands the storage thread at start (see storageThread.ts and storageWorker.ts). */
export interface StorageWorkerData {
  readonly dir: string;
  /** Two Int32s: the request thread's commit counter (APPENDS) and whether the storage thread waits for it (ARMED). */
  readonly appends: SharedArrayBuffer;
  /** Tests only: see eventStore/eventStoreWrapper.ts. */
  readonly eventStoreWrapper?: string;
}

export const APPENDS = 0;
export const ARMED = 1;
