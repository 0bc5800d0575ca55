/**
 * A trigger's filter saved before a check that now refuses it (a regex with a lookahead, say) is checked again each
 * time it would run and matches nothing; the owner learns why from a warning, once per workflow and process, not once
 * per event.
 */
import type { Logger } from '../../../logger.js';

/** Workflows warned about, at most (the oldest forgotten first: a later event warns again). */
const REMEMBERED = 1_000;

export const refusedFilterWarning = (logger: Logger, trigger: string) => {
  const warned = new Set<string>();
  return (workflowId: string, error: unknown): void => {
    if (warned.has(workflowId)) return;
    if (warned.size >= REMEMBERED) warned.delete(warned.values().next().value!);
    warned.add(workflowId);
    const reason = error instanceof Error ? error.message : String(error);
    logger.warn({ workflowId, reason }, `${trigger}: workflow ${workflowId}'s filter is refused by the current checks (${reason}); it matches nothing until the workflow is saved with a filter that passes`);
  };
};
