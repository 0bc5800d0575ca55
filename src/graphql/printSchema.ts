import { writeFileSync } from 'node:fs';
import { printSchema } from 'graphql';
import { schema } from './schema.js';

/** `npm run schema:print`: writes schema/schema.graphql from the Pothos schema (a test fails when it is stale). */
export const printedSchema = (): string => `${printSchema(schema)}\n`;

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/src\//, '/src/'))) {
  writeFileSync(new URL('../../schema/schema.graphql', import.meta.url), printedSchema());
  console.log('schema/schema.graphql written');
}
