import pino, { type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stdout (one object per line). */
export const createLogger = (level: string, destination?: pino.DestinationStream): Logger =>
  pino({ level, base: { service: 'switchyard' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
