import { createRequire } from 'node:module';
import type CliProgress from 'cli-progress';
import type { Progress } from '../run/context.js';

// Loaded only when a bar is drawn: every command's context can make one, and most never do.
const load = () => createRequire(import.meta.url)('cli-progress') as typeof CliProgress;

export type { Progress };

/** Bars on screen now: a signal clears them before its line is printed, so the clean-up cannot erase that line. */
const active = new Set<Progress>();
export function stopProgressBars(): void {
  for (const p of [...active]) p.stop();
}

/** A bar on stderr (rows, rows/s, ETA) only on a TTY, and never with --no-progress or --quiet. */
export function createProgress(flags: { progress?: boolean; quiet?: boolean }, label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  const enabled = !!stream.isTTY && flags.progress !== false && !flags.quiet;
  if (!enabled) return { enabled, start() {}, tick() {}, stop() {} };
  const cliProgress = load();
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
  const self: Progress = {
    enabled,
    start(total) { t0 = Date.now(); running = true; active.add(self); bar.start(Math.max(total, 1), 0, { speed: 0 }); },
    tick(n) {
      value += n;
      if (running) bar.update(value, { speed: Math.round(value / Math.max(0.001, (Date.now() - t0) / 1000)) });
    },
    stop() { if (running) { bar.stop(); running = false; active.delete(self); } },
  };
  return self;
}
