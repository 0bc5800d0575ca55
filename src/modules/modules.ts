import type { GenerationsApi } from './generations/generation.api.js';

/** Each capability's application API, built in the composition root (main.ts) and handed to the API layers. */
export interface Modules {
  readonly generations: GenerationsApi;
}
