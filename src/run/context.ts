import type { CliError } from '../errors.js';
import type { Logger } from '../util/logger.js';

/** A progress sink for one unit of work (a bar on a terminal, or nothing). */
export interface Progress {
  readonly enabled: boolean;
  start(total: number): void;
  tick(n: number): void;
  stop(): void;
}

/** Machine-readable run events (NDJSON on stdout for `run --json`). */
export interface RunEvents {
  emit(e: Record<string, unknown>): Promise<void>;
}

/**
 * What the engine needs from whoever drives it, and nothing more: it never
 * writes to a stream or picks an exit code itself.
 */
export interface EngineContext {
  readonly log: Logger;
  /** A progress sink labelled `label`. */
  progress(label: string): Progress;
  /** Where run events go; null when nobody asked for them (summary lines are logged instead). */
  readonly events: RunEvents | null;
  /** Aborted on SIGINT/SIGTERM: long work listens to it and cleans up. */
  readonly signal: AbortSignal;
  /** The clock (`run --now` replaces it). */
  now(): number;
  readonly env: NodeJS.ProcessEnv;
  /** The state dir given on the command line, which wins over the config's. */
  readonly stateDirFlag?: string;
  /** Reports one export's failure (the run goes on with the next export). */
  reportFailure(label: string, err: CliError): void;
}
