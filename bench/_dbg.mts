import { startHarness } from '../test/support/appHarness.ts';
const h = await startHarness({ LOG_LEVEL: 'error' });
console.log(JSON.stringify(await h.gql('{ me { id } }', {}, null)));
await h.stop();
