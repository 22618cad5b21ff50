import { DuckDBInstance } from '@duckdb/node-api';
import { parquetMetadata, readOffsetIndex } from 'hyparquet';

const arrayBuffer = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;

/**
 * Checks that a Parquet file's byte layout agrees with its footer: row groups
 * and column chunks follow each other from byte 4, each chunk's pages start
 * where its metadata says, and every offset index lists pages that tile the
 * chunk exactly. Returns each row group's rows and uncompressed bytes.
 */
export function checkParquetLayout(file: Buffer): Array<{ rows: number; bytes: number }> {
  const ab = arrayBuffer(file);
  const meta = parquetMetadata(ab);
  let at = 4n;
  for (const g of meta.row_groups) {
    for (const c of g.columns) {
      const m = c.meta_data!;
      if (c.file_offset !== at) throw new Error(`column ${m.path_in_schema.join('.')} starts at ${c.file_offset}, expected ${at}`);
      const first = m.dictionary_page_offset ?? m.data_page_offset;
      if (first !== at) throw new Error(`column ${m.path_in_schema.join('.')}: first page at ${first}, chunk at ${at}`);
      const end = at + m.total_compressed_size;
      if (c.offset_index_offset !== undefined) {
        const ix = readOffsetIndex({ view: new DataView(ab, Number(c.offset_index_offset), c.offset_index_length!), offset: 0 });
        let p = m.data_page_offset;
        for (const loc of ix.page_locations) {
          if (loc.offset !== p) throw new Error(`column ${m.path_in_schema.join('.')}: offset index page at ${loc.offset}, expected ${p}`);
          p += BigInt(loc.compressed_page_size);
        }
        if (p !== end) throw new Error(`column ${m.path_in_schema.join('.')}: offset index pages end at ${p}, chunk at ${end}`);
      }
      at = end;
    }
  }
  if (meta.row_groups.reduce((a, g) => a + g.num_rows, 0n) !== meta.num_rows) throw new Error('row groups do not add up to num_rows');
  return meta.row_groups.map((g) => ({ rows: Number(g.num_rows), bytes: Number(g.total_byte_size) }));
}

/** Runs one query in an in-memory DuckDB and returns its rows. */
export async function duckdb(sql: string): Promise<Array<Record<string, unknown>>> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    return (await c.runAndReadAll(sql)).getRowObjectsJS() as Array<Record<string, unknown>>;
  } finally {
    c.closeSync();
    db.closeSync();
  }
}
