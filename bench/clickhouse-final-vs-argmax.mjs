// FINAL against argMax by ver on a ReplacingMergeTree(ver) table of 1M ids (200k with an older
// processing version, merges stopped), on the embedded engine. Prints the mean of 3 runs.
import { tmpdir } from 'node:os';
import { Session } from 'chdb';
const s = new Session(`${tmpdir()}/bl-final-bench-${process.pid}`);
const q = async (sql) => (await s.queryAsync(sql, { format: 'TabSeparated' })).text();
await q(`CREATE TABLE logs (id String, timestamp DateTime64(3), provider String, status String, latency Nullable(Float64), cost Nullable(Float64), input_history Nullable(String), ver DateTime64(9) DEFAULT now64(9)) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMM(timestamp) ORDER BY (timestamp, id)`);
await q(`SYSTEM STOP MERGES logs`);
// processing versions for 20% of rows, then every row complete, in 10 inserts
for (let k = 0; k < 10; k++) {
  const base = k * 100000;
  const sel = (st) => `SELECT toString(cityHash64(number + ${base})) AS id, toDateTime64('2026-10-01 00:00:00', 3) + toIntervalMillisecond((number + ${base}) * 259), ['openai','anthropic','groq','azure'][number % 4 + 1], ${st}, (number % 5000) / 1.0, (number % 1000) / 1e5, repeat('x', 200) FROM numbers(100000)`;
  await q(`INSERT INTO logs (id, timestamp, provider, status, latency, cost, input_history) ${sel("'processing'")} WHERE number % 5 = 0`);
  await q(`INSERT INTO logs (id, timestamp, provider, status, latency, cost, input_history) ${sel("if(number % 10 = 0, 'error', 'success')")}`);
}
console.log('rows', await q('SELECT count() FROM logs'), 'parts', await q("SELECT count() FROM system.parts WHERE table='logs' AND active"));
const time = async (name, sql) => { const t = Date.now(); let r; for (let i = 0; i < 3; i++) r = await q(sql); console.log(name, ((Date.now() - t) / 3).toFixed(0) + 'ms', r.trim().slice(0, 80).replace(/\n/g, ' | ')); };
const argmaxBase = `SELECT id, argMax(timestamp, ver) AS timestamp, argMax(provider, ver) AS provider, argMax(status, ver) AS status, argMax(latency, ver) AS latency, argMax(cost, ver) AS cost, argMax(input_history, ver) AS input_history FROM logs GROUP BY id`;
await time('FINAL  count', `SELECT count() FROM logs FINAL`);
await time('argMax count', `SELECT count() FROM (${argmaxBase})`);
await time('FINAL  stats', `SELECT provider, count(), countIf(status='error'), quantileExactInclusive(0.95)(latency), sum(cost) FROM logs FINAL WHERE timestamp >= '2026-10-01 06:00:00' GROUP BY provider ORDER BY provider`);
await time('argMax stats', `SELECT provider, count(), countIf(status='error'), quantileExactInclusive(0.95)(latency), sum(cost) FROM (${argmaxBase}) WHERE timestamp >= '2026-10-01 06:00:00' GROUP BY provider ORDER BY provider`);
await time('FINAL  page', `SELECT id, timestamp, status, latency, input_history FROM logs FINAL WHERE (timestamp, id) > (toDateTime64('2026-10-02 00:00:00', 3), '') ORDER BY timestamp, id LIMIT 5000 FORMAT Null`);
await time('argMax page', `SELECT id, timestamp, status, latency, input_history FROM (${argmaxBase}) WHERE (timestamp, id) > (toDateTime64('2026-10-02 00:00:00', 3), '') ORDER BY timestamp, id LIMIT 5000 FORMAT Null`);
await time('FINAL  export day', `SELECT * FROM logs FINAL WHERE timestamp >= '2026-10-01 00:00:00' AND timestamp < '2026-10-02 00:00:00' AND status <> 'processing' FORMAT Null`);
await time('argMax export day', `SELECT * FROM (${argmaxBase}) WHERE timestamp >= '2026-10-01 00:00:00' AND timestamp < '2026-10-02 00:00:00' AND status <> 'processing' FORMAT Null`);
s.close();
