import type { ProjectionRunner } from '../../../projections/runner.js';
import type { DomainEvent, EventStore } from '../../eventStore/eventStore.js';
import { handleCommand, type Decider, type HandleResult } from '../../eventStore/handleCommand.js';
import type { Logger } from '../../logger.js';
import type { AuthDirectory } from './authDirectory.js';
import type { Caller } from './principal.js';

/**
 * Commands on account and key streams. A command returns once the auth directory (write side, in memory) has
 * applied it, so a revoked key is refused on the very next request; it never waits for the read models. Queries
 * wait (bounded) for this process's last such write instead, so a client reads its own writes.
 */
export const createAuthWrites = (deps: { eventStore: EventStore; directory: AuthDirectory; runner: ProjectionRunner; logger: Logger; now: () => Date }) => {
  let lastPosition = 0;
  return {
    async execute<State, Command, Event extends DomainEvent>(
      stream: string,
      decider: Decider<State, Command, Event>,
      command: Command,
      caller: Caller,
      /** Who the events name when no key called (self-signup). */
      anonymousActor = 'anonymous',
    ): Promise<HandleResult<State, Event>> {
      const result = await handleCommand(deps.eventStore, stream, decider, command, {
        metadata: { actor: caller.principal?.accountId ?? anonymousActor, correlationId: caller.requestId, at: deps.now().toISOString() },
      });
      if (result.position !== null) {
        lastPosition = Math.max(lastPosition, result.position);
        if (!(await deps.directory.waitFor(result.position))) deps.logger.warn({ stream, position: result.position }, 'the auth directory is lagging behind a command');
      }
      return result;
    },
    /** Wait until the read models hold this process's last write here (or give up after the runner's timeout). */
    async readYourWrites(): Promise<void> {
      await deps.runner.waitFor(lastPosition);
    },
  };
};
