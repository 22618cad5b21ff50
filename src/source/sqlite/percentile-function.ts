import type Database from 'better-sqlite3';
import { DoubleList, percentileCont } from '../percentile.js';
import { PERCENTILE_FUNCTION } from './sqlite-dialect.js';

interface State { list: DoubleList; p: number }

/**
 * Adds `bifrost_logs_percentile_cont(value, p)` to one connection: PostgreSQL's `percentile_cont(p)` as an
 * ordinary aggregate, so that exact percentiles come out of the same single GROUP BY pass as every other
 * metric. Each group's values are kept as doubles in a typed array and sorted once. The function lives in
 * this connection only; nothing is written to the DB.
 */
export function registerPercentile(db: Database.Database): void {
  // better-sqlite3's typings give `step` one argument; at run time it gets every SQL argument.
  const step = ((s: State, value: unknown, p: unknown) => {
      s.p = p as number;
      if (typeof value === 'number') s.list.push(value);
      else if (typeof value === 'bigint') s.list.push(Number(value));
      return s;
  }) as unknown as (s: State, value: State) => State;
  db.aggregate(PERCENTILE_FUNCTION, {
    start: (): State => ({ list: new DoubleList(), p: 0 }),
    step,
    result: (s: State) => percentileCont(s.list.sorted(), s.p),
  });
}
