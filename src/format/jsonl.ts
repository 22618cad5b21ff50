import type { RecordSchema } from '../record/fields.js';
import type { Cell } from '../record/mapper.js';
import { ByteWriter } from './byte-writer.js';
import type { Format, RowWriter } from './types.js';

/** ASCII characters JSON.stringify copies as they are: printable, but not the quote or the backslash. */
const PLAIN = new Uint8Array(128);
for (let c = 0x20; c < 0x7f; c++) PLAIN[c] = c === 0x22 || c === 0x5c ? 0 : 1;

/**
 * JSONL rows written as bytes straight from row arrays, as `JSON.stringify`
 * writes the record objects: keys in schema order (a field whose value is
 * undefined left out), printable ASCII strings and int32 numbers copied byte
 * by byte, every other value through `JSON.stringify` (escapes, lone
 * surrogates, fractions, NaN, nested JSON) and a UTF-8 write.
 */
class JsonlRowWriter extends ByteWriter implements RowWriter {
  private readonly keys: Buffer[];

  constructor(schema: RecordSchema) {
    super();
    this.keys = schema.map((f) => Buffer.from(`${JSON.stringify(f.name)}:`));
  }

  push(rows: readonly unknown[][], cells: readonly Cell[]): Buffer | null {
    if (!rows.length) return null;
    const n = cells.length;
    const keys = this.keys;
    for (const r of rows) {
      this.byte(0x7b);
      let first = true;
      for (let i = 0; i < n; i++) {
        const v = cells[i]!(r);
        if (v === undefined) continue;
        if (!first) this.byte(0x2c);
        first = false;
        this.bytes(keys[i]!);
        this.value(v);
      }
      this.byte(0x7d);
      this.byte(0x0a);
    }
    return this.take();
  }

  private value(v: unknown): void {
    if (typeof v === 'string') return this.text(v);
    if (typeof v === 'number' && (v | 0) === v) return this.int(v);
    this.utf8(JSON.stringify(v) ?? 'null');
  }

  private text(s: string): void {
    const n = s.length;
    if (this.off + n + 2 > this.buf.length) this.grow(n + 2);
    const b = this.buf;
    let o = this.off;
    b[o++] = 0x22;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 128 && PLAIN[c] === 1) b[o++] = c;
      else return this.utf8(JSON.stringify(s)); // what was copied is written over
    }
    b[o++] = 0x22;
    this.off = o;
  }
}


/** One JSON object per line; JSON columns stay nested. */
export const jsonlFormat: Format = {
  name: 'jsonl',
  extension: 'jsonl',
  contentType: 'application/x-ndjson',
  wrapsGzip: true,
  createEncoder() {
    return {
      push(records) {
        if (!records.length) return null;
        let s = '';
        for (const r of records) s += JSON.stringify(r) + '\n';
        return Buffer.from(s);
      },
      finish: () => null,
    };
  },
  createRowWriter: (schema) => new JsonlRowWriter(schema),
  // JSON.stringify escapes newlines, so every 0x0A ends a record.
  rowEnd(bytes, n) {
    let at = -1;
    for (let i = 0; i < n; i++) {
      at = bytes.indexOf(0x0a, at + 1);
      if (at < 0) throw new Error(`encoded JSONL holds fewer than ${n} records`);
    }
    return at + 1;
  },
};
