import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/errors.js';
import { invalidUtf8Offset, parseJsonBody } from '../../src/http/rest.js';

/** Bytes near UTF-8: mostly valid text, with stray lead, continuation, overlong and surrogate bytes mixed in. */
const nearUtf8 = fc
  .array(fc.oneof(fc.string({ unit: 'binary' }).map((text) => [...Buffer.from(text)]), fc.constantFrom([0xff], [0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xc3])), { maxLength: 12 })
  .map((parts) => Uint8Array.from(parts.flat()));

describe('UTF-8 request bodies', () => {
  it('invalidUtf8Offset finds the first sequence that is not UTF-8 where the platform decoder sees one (-1 for none)', () => {
    fc.assert(
      fc.property(nearUtf8, (bytes) => {
        const offset = invalidUtf8Offset(bytes);
        expect(offset === -1).toBe(isUtf8(bytes));
        // What comes before it is UTF-8; from it on, no valid sequence starts there.
        if (offset !== -1) {
          expect(isUtf8(bytes.subarray(0, offset))).toBe(true);
          expect(new TextDecoder().decode(bytes.subarray(offset, offset + 4)).startsWith('\uFFFD')).toBe(true);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('parseJsonBody refuses invalid UTF-8 with a 400 naming the offset, and reads past a byte-order mark', () => {
    const bad = Buffer.concat([Buffer.from('{"q":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    expect(() => parseJsonBody(bad)).toThrow(DomainError);
    expect(() => parseJsonBody(bad)).toThrow('The request body is not valid UTF-8 (a byte sequence at offset 6)');
    expect(parseJsonBody(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"q":"é"}')]))).toEqual({ q: 'é' });
  });
});
