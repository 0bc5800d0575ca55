/**
 * `action.githubComment`: post a comment on a pull request (or issue) through `@octokit/rest`:
 * `POST {GITHUB_API_URL}/repos/{owner}/{repo}/issues/{number}/comments`. `token` names a secret of the account
 * (secrets.ts), opened only here; the value never reaches the run's events.
 *
 * Outbound policy: the base URL is operator configuration (GITHUB_API_URL, for GitHub Enterprise or a local fake),
 * not the designer's, so the call goes out like a trusted provider's (no private-address guard); the designer
 * chooses only the path parts, which Octokit URL-encodes.
 *
 * At least once: GitHub has no idempotency key for comments, so an attempt cut by a crash after GitHub stored the
 * comment posts it again when the run resumes.
 */
import { Octokit } from '@octokit/rest';
import { z } from 'zod';
import type { SecretsApi } from '../secrets.js';
import { parseInput } from './parseInput.js';
import { StepError, type StepRunner } from './step.js';

/** GitHub's own limit on a comment body. */
export const MAX_COMMENT_CHARS = 65_536;

const NAME = /^[A-Za-z0-9_.-]{1,100}$/;
export const commentInput = z.strictObject({
  owner: z.string().regex(NAME, 'must be a GitHub owner name'),
  repo: z.string().regex(NAME, 'must be a GitHub repository name'),
  number: z.int().min(1),
  body: z.string().min(1, 'must not be empty').max(MAX_COMMENT_CHARS, `must be at most ${MAX_COMMENT_CHARS} characters`),
  token: z.string().min(1, 'must name a secret of the account (setSecret)'),
});

const statusOf = (error: unknown): number | null =>
  typeof error === 'object' && error !== null && 'status' in error && typeof error.status === 'number' ? error.status : null;

export const actionGithubComment =
  (deps: { secrets: Pick<SecretsApi, 'open'>; baseUrl: string }): StepRunner =>
  async (input, context) => {
    const { owner, repo, number, body, token } = parseInput(commentInput, input);
    const secret = await deps.secrets.open(context.principal.accountId, token);
    if ('problem' in secret) throw new StepError('SECRET_NOT_FOUND', `input.token: ${secret.problem}`, false);
    const octokit = new Octokit({ auth: secret.value, baseUrl: deps.baseUrl, userAgent: 'switchyard-workflows', request: { signal: context.signal } });
    try {
      const { data } = await octokit.rest.issues.createComment({ owner, repo, issue_number: number, body });
      return { output: { id: data.id, url: data.html_url, createdAt: data.created_at }, cost: 0 };
    } catch (error) {
      if (context.signal.aborted) throw error;
      const status = statusOf(error);
      const reason = error instanceof Error ? error.message : String(error);
      // 4xx (bad token, no such pull request, no access) fails the same way again; 5xx, 429 and network errors may pass.
      const retryable = status === null || status >= 500 || status === 429;
      throw new StepError('GITHUB_ERROR', `GitHub refused the comment on ${owner}/${repo}#${number}${status === null ? '' : ` (HTTP ${status})`}: ${reason.slice(0, 300)}`, retryable);
    }
  };
