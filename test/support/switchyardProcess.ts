/**
 * Switchyard as its own process, configured from the environment like src/main.ts, with a test's event store
 * wrapper (`TEST_EVENTSTORE_WRAPPER`, a module URL) for fault injection. Started by tests that kill it.
 */
import { loadConfig } from '../../src/config.js';
import { startSwitchyard } from '../../src/main.js';

const wrapper = process.env.TEST_EVENTSTORE_WRAPPER;
await startSwitchyard(loadConfig(), { ...(wrapper ? { eventStoreWrapper: wrapper } : {}) });
