/**
 * A request or response body, whole, as a Buffer; rejects past `maxBytes` (with `tooLarge()`), on a stream error,
 * or when the stream ends early (with `cut(cause)` when given, else the stream's error). Event listeners rather than
 * `for await`: an async iterator over a stream costs a few promises and listeners per chunk, on every request.
 */
export const readBody = (
  stream: NodeJS.ReadableStream & { destroy(error?: Error): void },
  maxBytes: number,
  tooLarge: () => Error,
  cut: (cause: Error) => Error = (cause) => cause,
): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      stream.removeListener('data', onData);
      stream.removeListener('end', onEnd);
      stream.removeListener('error', onError);
      stream.removeListener('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        stream.resume(); // drain and discard the rest, so the connection can answer
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(cut(error));
    };
    const onClose = () => {
      cleanup();
      reject(cut(new Error('The stream closed before its end')));
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
