/** What the format registry knows of Parquet before its writer (hyparquet-writer) is loaded. */
export const PARQUET_INFO = {
  name: 'parquet',
  extension: 'parquet',
  contentType: 'application/vnd.apache.parquet',
  wrapsGzip: false,
} as const;
