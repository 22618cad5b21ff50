import { usageError } from '../errors.js';
import { parseLogTable, type LogTableName } from '../source/log-table.js';

/**
 * The log table a command reads, from `--log-table NAME` and, where `--table`
 * does not name something else, `--table NAME`. Undefined when neither names
 * one (the config's or the default applies). Two different names are a usage error.
 */
export function logTableFromFlags(o: { logTable?: string; table?: unknown }, tableNamesLogTable: boolean): LogTableName | undefined {
  const a = o.logTable !== undefined ? parseLogTable(o.logTable, '--log-table') : undefined;
  const b = tableNamesLogTable && typeof o.table === 'string' ? parseLogTable(o.table, '--table') : undefined;
  if (a && b && a !== b) throw usageError('parse the command line', `--log-table ${a} and --table ${b} name different log tables`);
  return a ?? b;
}
