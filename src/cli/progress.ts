import cliProgress from 'cli-progress';
import type { Progress } from '../run/context.js';

export type { Progress };

/** A bar on stderr (rows, rows/s, ETA) only on a TTY, and never with --no-progress or --quiet. */
export function createProgress(flags: { progress?: boolean; quiet?: boolean }, label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  const enabled = !!stream.isTTY && flags.progress !== false && !flags.quiet;
  if (!enabled) return { enabled, start() {}, tick() {}, stop() {} };
  const bar = new cliProgress.SingleBar({
    stream,
    format: `${label} |{bar}| {value}/{total} rows | {speed} rows/s | ETA {eta_formatted}`,
    hideCursor: true,
    clearOnComplete: true,
    etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  let value = 0;
  let t0 = Date.now();
  let running = false;
  return {
    enabled,
    start(total) { t0 = Date.now(); running = true; bar.start(Math.max(total, 1), 0, { speed: 0 }); },
    tick(n) {
      value += n;
      if (running) bar.update(value, { speed: Math.round(value / Math.max(0.001, (Date.now() - t0) / 1000)) });
    },
    stop() { if (running) { bar.stop(); running = false; } },
  };
}
