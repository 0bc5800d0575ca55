import { describe, expect, it } from 'vitest';
import { invalidRequest } from '../../src/gateway/gatewayErrors.js';
import { responsesErrorBody } from '../../src/gateway/skins/openaiResponses.js';

const render = (message: string, param: string) => responsesErrorBody(invalidRequest(message, { param }), 'req-1').error;

describe('the Responses skin names the fields its callers sent', () => {
  it('renames the chat fields the skin translated to (param, metadata.param and a message that starts with the field)', () => {
    expect(render('messages[2].content must be a string or a list of content parts', 'messages[2].content')).toMatchObject({
      param: 'input',
      message: 'input must be a string or a list of content parts',
      metadata: { param: 'input' },
    });
    expect(render('max_tokens 5000 is more than any endpoint of x/y can return', 'max_tokens')).toMatchObject({ param: 'max_output_tokens', message: 'max_output_tokens 5000 is more than any endpoint of x/y can return' });
    expect(render('response_format.type must be text, json_object or json_schema', 'response_format')).toMatchObject({ param: 'text.format', message: 'text.format.type must be text, json_object or json_schema' });
  });

  it('leaves the fields of the same name, and its own names, as they are', () => {
    expect(render('temperature must be a number between 0 and 2', 'temperature')).toMatchObject({ param: 'temperature', message: 'temperature must be a number between 0 and 2' });
    expect(render('input[0].type must be message', 'input[0].type')).toMatchObject({ param: 'input[0].type' });
    expect(render('max_tokens_x is odd', 'max_tokens_x')).toMatchObject({ param: 'max_tokens_x' });
  });
});
