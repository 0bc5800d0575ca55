import { describe, expect, it } from 'vitest';
import { stepGenerationId } from '../../src/modules/workflows/steps/model.js';

describe("a model step's generation id", () => {
  const runId = 'run_0mimabcde0123456789abcdef';

  it('is the same for the same attempt, and differs by attempt and step', () => {
    const id = stepGenerationId(runId, `${runId}.answer.1`);
    expect(stepGenerationId(runId, `${runId}.answer.1`)).toBe(id);
    expect(stepGenerationId(runId, `${runId}.answer.2`)).not.toBe(id);
    expect(stepGenerationId(runId, `${runId}.other.1`)).not.toBe(id);
  });

  it("has newGenerationId's shape with the run's time part, or gen-w + hex for another run id shape", () => {
    expect(stepGenerationId(runId, `${runId}.answer.1`)).toMatch(/^gen-0mimabcde[0-9a-f]{16}$/);
    expect(stepGenerationId('my-run', 'my-run.answer.1')).toMatch(/^gen-w[0-9a-f]{32}$/);
  });
});
