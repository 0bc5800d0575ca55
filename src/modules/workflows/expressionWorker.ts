/**
 * An expression thread (see expressionThreads.ts): evaluates one job at a time and answers with its value or its
 * StepError. Before each expression it writes the time it started and its place in the job to the shared clock, which
 * the request thread reads to stop one that runs past its limit.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { JsonValue } from '../../eventStore/eventStore.js';
import { CLOCK_INDEX, CLOCK_STARTED, type ExpressionAnswer, type ExpressionJob, type WireScope } from './expressionThreads.protocol.js';
import { evaluateExpression, evaluateStepInput, type EvaluationHooks, type ExpressionScope } from './run.expressions.js';
import { StepError } from './steps/step.js';

const port = parentPort!;
const clock = new BigInt64Array((workerData as { clock: SharedArrayBuffer }).clock);

const readScope = (wire: WireScope): ExpressionScope => {
  const steps: Record<string, JsonValue> = {};
  for (const [key, text] of Object.entries(wire.steps)) steps[key] = JSON.parse(text) as JsonValue;
  return { trigger: JSON.parse(wire.trigger) as JsonValue, steps, run: wire.run, workflow: wire.workflow };
};

port.on('message', (job: ExpressionJob) => {
  const scope = readScope(job.scope);
  let index = -1;
  const hooks: EvaluationHooks = {
    started: () => {
      Atomics.store(clock, CLOCK_INDEX, BigInt(++index));
      Atomics.store(clock, CLOCK_STARTED, BigInt(Date.now()));
    },
  };
  const evaluation: Promise<JsonValue> =
    job.kind === 'input' ? evaluateStepInput(job.input, scope, job.where, job.limits, hooks) : evaluateExpression(job.source, scope, job.where, job.limits, hooks);
  void evaluation.then(
    (value) => answer({ id: job.id, ok: true, value }),
    (error: unknown) =>
      answer(
        error instanceof StepError
          ? { id: job.id, ok: false, code: error.code, message: error.message }
          : { id: job.id, ok: false, code: null, message: error instanceof Error ? error.message : String(error) },
      ),
  );
});

const answer = (message: ExpressionAnswer) => {
  Atomics.store(clock, CLOCK_STARTED, 0n);
  port.postMessage(message);
};

port.postMessage({ ready: true });
