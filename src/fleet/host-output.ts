import { AsyncLocalStorage } from 'node:async_hooks';

/** Where one host's run writes: its stdout and stderr text, as it comes. */
export interface HostSink {
  out(text: string): void;
  err(text: string): void;
}

const current = new AsyncLocalStorage<HostSink>();
let installed = false;
/** The real streams' writes, for the fleet's own lines (a host's lines are shown from inside its run). */
const real = { out: (t: string) => process.stdout.write(t), err: (t: string) => process.stderr.write(t) };

export function writeOut(text: string): void {
  real.out(text);
}

export function writeErr(text: string): void {
  real.err(text);
}

/**
 * The hosts of a fleet run in this process, several at once, and the commands write to
 * process.stdout/stderr as a single run does. Once installed, a write made inside withSink()
 * (its async descendants included: ssh output, listr's renderer) goes to that run's sink instead;
 * writes outside any run (the fleet's own lines, its table) go to the real streams. Inside a run
 * stdout is no TTY, so a run draws no spinners over its neighbours' lines.
 */
export function routeHostOutput(): void {
  if (installed) return;
  installed = true;
  for (const [stream, pick, name] of [[process.stdout, (s: HostSink) => s.out.bind(s), 'out'], [process.stderr, (s: HostSink) => s.err.bind(s), 'err']] as const) {
    const write = stream.write.bind(stream) as (...a: unknown[]) => boolean;
    real[name] = (t) => write(t);
    stream.write = ((chunk: string | Uint8Array, encoding?: BufferEncoding | ((e?: Error) => void), cb?: (e?: Error) => void): boolean => {
      const sink = current.getStore();
      if (!sink) return write(chunk, encoding, cb);
      pick(sink)(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString(typeof encoding === 'string' ? encoding : 'utf8'));
      const done = typeof encoding === 'function' ? encoding : cb;
      if (done) process.nextTick(done);
      return true;
    }) as typeof stream.write;
    let tty = stream.isTTY;
    Object.defineProperty(stream, 'isTTY', {
      configurable: true,
      get: () => (current.getStore() ? false : tty),
      set: (v: boolean) => (tty = v),
    });
  }
}

export function withSink<T>(sink: HostSink, fn: () => Promise<T>): Promise<T> {
  return current.run(sink, fn);
}
