import { rm } from 'node:fs/promises';
import { CliError, ExitCode } from '../../errors.js';
import type { DestinationEnv, PartInfo, PartUpload } from '../types.js';
import type { TableColumn, TableLayout } from './layout.js';
import { missingColumns } from './layout.js';
import { openSpool, type Spool } from './spool.js';

/** Parts reach a warehouse in its load format, uncompressed (run/ asks for exactly that). */
export function assertLoadFormat(part: PartInfo, format: 'jsonl' | 'parquet', warehouse: string): void {
  if (part.format !== format || part.contentEncoding) {
    throw new CliError(`load into ${warehouse}`, `parts must be uncompressed ${format} (got ${part.format}${part.contentEncoding ? `, ${part.contentEncoding}` : ''})`, { exitCode: ExitCode.software });
  }
}

/** What the destination holds for each part of the current window, until its commit. */
export class StagedParts<T> {
  private readonly map = new Map<string, T>();
  constructor(private readonly warehouse: string, private readonly where: () => string) {}

  set(key: string, v: T): void { this.map.set(key, v); }
  get(key: string): T | undefined { return this.map.get(key); }
  delete(key: string): void { this.map.delete(key); }
  clear(): void { this.map.clear(); }
  keys(): string[] { return [...this.map.keys()]; }
  values(): T[] { return [...this.map.values()]; }

  /** The staged entries of a commit's parts, in order; a part this run did not stage is a bug. */
  take(parts: readonly { key: string }[]): T[] {
    return parts.map((p) => {
      const s = this.map.get(p.key);
      if (s === undefined) throw new CliError(`load into ${this.warehouse} (${this.where()})`, `part ${p.key} was not staged by this run`, { exitCode: ExitCode.software });
      return s;
    });
  }
}

/**
 * A part spooled to a local file under the state dir; `done` runs once the
 * file is complete (load it, or remember it for the commit). `keep`: the file
 * stays for the commit (else it is removed after `done`, whatever happens).
 */
export async function spoolPart(env: DestinationEnv, warehouse: string, file: string, o: { keep: boolean; done(spool: Spool): Promise<void>; aborted?(): Promise<void> }): Promise<PartUpload> {
  const spool = await openSpool(env.tmpDir, file, warehouse);
  return {
    write: (chunk) => spool.write(chunk),
    finish: async () => {
      await spool.close();
      try {
        await o.done(spool);
      } finally {
        if (!o.keep) await rm(spool.path, { force: true }).catch(() => {});
      }
    },
    abort: async () => {
      await spool.discard();
      await o.aborted?.();
    },
  };
}

/** Removes spooled files (once their commit is over, whatever its outcome). */
export async function removeSpooled(paths: readonly (string | undefined)[]): Promise<void> {
  for (const p of paths) if (p) await rm(p, { force: true }).catch(() => {});
}

/** How a warehouse reads, creates and widens its target table. */
export interface TableOps {
  /** Column name (as the catalog spells it) → type; empty when the table does not exist. */
  columns(): Promise<Map<string, string>>;
  create(columns: readonly TableColumn[]): Promise<void>;
  add(columns: readonly TableColumn[]): Promise<void>;
  /** How the catalog spells a name. */
  fold(name: string): string;
}

/**
 * Creates the table when missing, and adds the layout's new columns (only
 * those really missing, so an unchanged table takes no ALTER); nothing is
 * dropped or retyped. Returns the columns the table now has, with their types.
 */
export async function evolveTable(layout: TableLayout, ops: TableOps): Promise<Map<string, string>> {
  let cols = await ops.columns();
  if (!cols.size) {
    await ops.create(layout.columns);
    cols = await ops.columns();
  }
  const missing = missingColumns(layout, cols, ops.fold);
  if (missing.length) {
    await ops.add(missing);
    cols = await ops.columns();
  }
  return cols;
}
