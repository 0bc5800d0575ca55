import { connect } from 'node:net';

/**
 * Send bytes as they are over a fresh TCP connection and collect everything the server writes until it closes the
 * connection (send `Connection: close`, or a request the server refuses). Rejects after `timeoutMs` of waiting: a
 * server that neither answers nor closes is wedged.
 */
export const rawExchange = (port: number, request: Buffer | string, timeoutMs = 5_000): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms to ${JSON.stringify(request.toString('latin1').slice(0, 200))}`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A reset after the answer was written (the server closing while bytes were still arriving) is still an answer.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.write(typeof request === 'string' ? Buffer.from(request, 'latin1') : request);
  });

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

const STATUS_LINE = /^HTTP\/1\.1 (\d{3}) [^\r\n]*$/;
const HEADER_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+): ?([^\r\n]*)$/;

/**
 * The first final response in `bytes` (interim 1xx responses skipped), or an Error saying what is malformed: a
 * status line, header lines, the blank line, and a body as long as Content-Length says.
 */
export const parseResponse = (bytes: Buffer, method = 'GET'): RawResponse => {
  let rest = bytes;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) throw new Error(`no complete response head in ${JSON.stringify(bytes.toString('latin1').slice(0, 300))}`);
    const [statusLine = '', ...lines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const status = STATUS_LINE.exec(statusLine);
    if (!status) throw new Error(`malformed status line ${JSON.stringify(statusLine)}`);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const header = HEADER_LINE.exec(line);
      if (!header) throw new Error(`malformed header line ${JSON.stringify(line)}`);
      headers[header[1]!.toLowerCase()] = header[2]!;
    }
    const code = Number(status[1]);
    rest = rest.subarray(end + 4);
    if (code >= 100 && code < 200) continue;
    let body = rest;
    if (headers['content-length'] !== undefined && method !== 'HEAD' && code !== 304) {
      const length = Number(headers['content-length']);
      if (body.length < length) throw new Error(`body shorter (${body.length}) than its content-length ${length}`);
      body = body.subarray(0, length);
    }
    return { status: code, headers, body };
  }
};

/** Where a chunked body ends in `bytes` (after its last chunk and trailers), and the body decoded; throws when incomplete. */
const dechunk = (bytes: Buffer): { body: Buffer; end: number } => {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', at);
    if (lineEnd < 0) throw new Error('chunked body cut off');
    const size = parseInt(bytes.subarray(at, lineEnd).toString('latin1').split(';')[0]!, 16);
    if (Number.isNaN(size)) throw new Error(`malformed chunk size line ${JSON.stringify(bytes.subarray(at, lineEnd).toString('latin1'))}`);
    at = lineEnd + 2;
    if (size === 0) {
      const trailersEnd = bytes.indexOf('\r\n', at);
      // No trailers: the empty line follows at once; else skip to the blank line.
      const end = trailersEnd === at ? at + 2 : bytes.indexOf('\r\n\r\n', at) + 4;
      if (trailersEnd < 0 || end < 4) throw new Error('chunked body cut off in its trailers');
      return { body: Buffer.concat(parts), end };
    }
    if (bytes.length < at + size + 2) throw new Error('chunked body cut off');
    parts.push(bytes.subarray(at, at + size));
    at += size + 2;
  }
};

/**
 * Every final response in `bytes`, in order (pipelined answers on one connection): each body as long as its
 * Content-Length or its chunking says; a body with neither runs to the end of the bytes (the connection's close).
 * Throws when what follows the last whole response is not empty.
 */
export const parseResponses = (bytes: Buffer): RawResponse[] => {
  const responses: RawResponse[] = [];
  let rest = bytes;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) throw new Error(`trailing bytes that are no response: ${JSON.stringify(rest.toString('latin1').slice(0, 300))}`);
    // Parsed as a HEAD answer's: its body is read here.
    const head = /^HTTP\/1\.1 1\d\d /.test(rest.toString('latin1', 0, 13)) ? null : parseResponse(rest.subarray(0, end + 4), 'HEAD');
    const after = rest.subarray(end + 4);
    if (head === null) {
      rest = after;
      continue;
    }
    if (head.headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      const { body, end: bodyEnd } = dechunk(after);
      responses.push({ ...head, body });
      rest = after.subarray(bodyEnd);
    } else if (head.headers['content-length'] !== undefined) {
      const length = Number(head.headers['content-length']);
      if (after.length < length) throw new Error(`body shorter (${after.length}) than its content-length ${length}`);
      responses.push({ ...head, body: after.subarray(0, length) });
      rest = after.subarray(length);
    } else {
      responses.push({ ...head, body: after });
      rest = Buffer.alloc(0);
    }
  }
  return responses;
};
