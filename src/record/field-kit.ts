import { parseJsonCell, tryJson, type RecordWarnings } from './json-cell.js';

/** The building blocks of the export record's fields: types and the usual ways a field reads its columns. */
export type FieldType = 'timestamp' | 'string' | 'int32' | 'int64' | 'double' | 'bool' | 'json';

/** One column of the export schema. */
export interface SchemaField {
  readonly name: string;
  readonly type: FieldType;
  readonly nullable: boolean;
}
export type RecordSchema = readonly SchemaField[];
export type ExportRecord = Record<string, unknown>;

export interface RowAccess {
  /** Index of a canonical column in the page row, or -1. */
  idx(column: string): number;
  warnings: RecordWarnings;
}

export type Getter = (r: unknown[]) => unknown;

export interface FieldDef extends SchemaField {
  /** Canonical DB columns the field reads. */
  readonly deps: readonly string[];
  /** Content: dropped for content_hidden rows and marked for offloaded ones. */
  readonly content?: boolean;
  make(a: RowAccess): Getter;
}

export const truthy = (v: unknown) => v === true || v === 1 || v === '1' || v === 't' || v === 'true';
export const str = (v: unknown) => (v === null || v === undefined || v === '' ? null : String(v));
export const num = (v: unknown) => (v === null || v === undefined || v === '' ? null : Number(v));
export const int = (v: unknown) => (v === null || v === undefined || v === '' ? null : Math.round(Number(v)));

export function col(name: string, type: FieldType = 'string', conv: (v: unknown) => unknown = str, column = name): FieldDef {
  return {
    name, type, nullable: true, deps: [column],
    make(a) {
      const i = a.idx(column);
      return i < 0 ? () => null : (r) => conv(r[i]);
    },
  };
}

export function jsonCol(name: string, column: string, opts: { content?: boolean } = {}): FieldDef {
  return {
    name, type: 'json', nullable: true, deps: [column, 'id'], content: opts.content,
    make(a) {
      const i = a.idx(column);
      const id = a.idx('id');
      return i < 0 ? () => null : (r) => parseJsonCell(r[i], a.warnings, `${column} of ${String(r[id])}`);
    },
  };
}

/** Looks into a JSON cell (without counting malformed text twice). */
export function jsonPath(column: string, path: readonly string[]): (a: RowAccess) => Getter {
  return (a) => {
    const i = a.idx(column);
    if (i < 0) return () => null;
    return (r) => {
      let v = tryJson(r[i]) as any;
      for (const p of path) {
        if (v === null || v === undefined || typeof v !== 'object') return null;
        v = v[p];
      }
      return v ?? null;
    };
  };
}

export function derived(name: string, type: FieldType, deps: string[], make: (a: RowAccess) => Getter, content = false): FieldDef {
  return { name, type, nullable: true, deps, make, content };
}

export const firstPresent = (name: string, columns: string[]): FieldDef => ({
  name, type: 'json', nullable: true, deps: [...columns, 'id'], content: true,
  make(a) {
    const idx = columns.map((c) => a.idx(c)).filter((i) => i >= 0);
    const id = a.idx('id');
    return (r) => {
      for (const i of idx) {
        const v = r[i];
        if (v !== null && v !== undefined && v !== '') return parseJsonCell(v, a.warnings, `${columns[0]} of ${String(r[id])}`);
      }
      return null;
    };
  },
});

export const errorPart = (name: string, pick: (e: any) => unknown): FieldDef =>
  derived(name, 'string', ['error_details', 'status'], (a) => {
    const i = a.idx('error_details');
    const s = a.idx('status');
    return (r) => {
      if ((r[s] !== 'error' && r[s] !== 'cancelled') || i < 0) return null;
      const e = tryJson(r[i]) as any;
      if (!e || typeof e !== 'object') return null;
      const v = pick(e);
      return v === undefined || v === null || v === '' ? null : typeof v === 'string' ? v : JSON.stringify(v);
    };
  });

