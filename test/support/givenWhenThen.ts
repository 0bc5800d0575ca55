import { expect } from 'vitest';
import type { DomainEvent } from '../../src/eventStore/eventStore.js';
import { foldEvents, type Decider } from '../../src/eventStore/handleCommand.js';

/** Decider tests read as: given these events, when this command, then these events (or this error). */
export const deciderSpec = <State, Command, Event extends DomainEvent>(decider: Decider<State, Command, Event>) => (given: readonly Event[]) => ({
  when: (command: Command) => {
    const decide = () => decider.decide(command, foldEvents(decider, given));
    return {
      then: (expected: readonly Event[]) => expect(decide()).toEqual(expected),
      thenThrows: (errorClass: new (...args: never[]) => Error, message?: RegExp) => {
        expect(decide).toThrow(errorClass);
        if (message) expect(decide).toThrow(message);
      },
    };
  },
});
