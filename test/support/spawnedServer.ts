import type { ChildProcess } from 'node:child_process';

/**
 * A Switchyard started as its own process (stdout and stderr piped): resolves with the port it logged once it is
 * listening, rejects with everything it printed if it exits first. `output()` is what it has printed so far.
 */
export const listeningPort = (child: ChildProcess): Promise<{ port: number; output: () => string }> => {
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    const look = setInterval(() => {
      const match = /listening on http:\/\/[^:]+:(\d+)/.exec(output);
      if (match) {
        clearInterval(look);
        child.off('exit', exitedEarly);
        resolve({ port: Number(match[1]), output: () => output });
      }
    }, 50);
    const exitedEarly = (code: number | null) => {
      clearInterval(look);
      reject(new Error(`Switchyard exited (${code}) before listening:\n${output}`));
    };
    child.once('exit', exitedEarly);
  });
};
