/**
 * OpenRouter's `response-healing` plugin: a whole (non-streamed) answer to a request for JSON (`response_format`
 * `json_object` or `json_schema`) that does not parse is repaired when it can be: the JSON taken out of a markdown
 * fence or the prose around it, then its syntax mended by `jsonrepair` (missing brackets, trailing commas, unquoted
 * keys, single quotes, a truncated end). Text that already parses is left as it is, and so is text with no object or
 * array in it: healing never turns prose into JSON. So is text longer than MAX_HEALED_CHARS: the repair runs on the
 * request thread (~0.2 ms per KiB), and a provider, which may be hostile, must not stall it with a huge answer.
 */
import { jsonrepair } from 'jsonrepair';

/** 256 KiB: far above a model's JSON answer (16,000 tokens are ~64 KiB), ~55 ms of repair at most. */
export const MAX_HEALED_CHARS = 256 * 1024;

const FENCE = /```[a-zA-Z0-9_-]*[ \t]*\r?\n?([\s\S]*?)(?:```|$)/;

const parses = (text: string): boolean => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

/** The repaired text if it parses as an object or array, else null. */
const repaired = (candidate: string): string | null => {
  try {
    const text = jsonrepair(candidate).trim();
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? text : null;
  } catch {
    return null;
  }
};

/** The healed JSON text, or null when `text` parses already, is too long to repair, or holds nothing that can be repaired into JSON. */
export const healJson = (text: string): string | null => {
  if (text.length > MAX_HEALED_CHARS || parses(text)) return null;
  const fenced = FENCE.exec(text)?.[1];
  const body = fenced !== undefined && /[{[]/.test(fenced) ? fenced : text;
  const start = body.search(/[{[]/);
  if (start < 0) return null;
  const from = body.slice(start);
  const close = from.lastIndexOf(from[0] === '{' ? '}' : ']');
  // The span up to the last closing bracket (prose after it dropped), then, truncated, everything from the start.
  return (close > 0 ? repaired(from.slice(0, close + 1)) : null) ?? repaired(from);
};
