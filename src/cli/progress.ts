import cliProgress from 'cli-progress';
import type { Ctx } from './context.js';

export interface Progress {
  readonly enabled: boolean;
  start(total: number): void;
  tick(n: number): void;
  stop(): void;
}

/** A bar on stderr (rows, rows/s, ETA) only on a TTY, and never with --no-progress or --quiet. */
export function createProgress(ctx: Pick<Ctx, 'global'>, label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  const enabled = !!stream.isTTY && ctx.global.progress !== false && !ctx.global.quiet;
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
