import { createHash } from 'node:crypto';
import { CliError, ExitCode } from '../../errors.js';
import { openLedger, type RunRow } from '../../run/ledger.js';
import { stateDir } from '../../run/state-dir.js';
import { openDestination } from '../../run/destinations.js';
import { windowFilter } from '../../run/export-window.js';
import type { Manifest } from '../../run/manifest.js';
import type { SourcePosition, WindowFingerprint } from '../../source/types.js';
import { fingerprintColumns } from '../../run/runner.js';
import { currentFingerprints, sameFingerprint } from '../../source/fingerprint.js';
import { isoMs } from '../../util/time.js';
import { loadJobs } from './run.js';
import type { Ctx } from '../context.js';

export interface VerifyOptions { name?: string; run?: string; json?: boolean }

/**
 * `verify`: every file of every delivered window exists with its size and
 * sha256, the manifest object matches, and the rows match a fresh COUNT.
 */
export async function verifyCommand(ctx: Ctx, o: VerifyOptions): Promise<number> {
  const { cfg, jobs } = await loadJobs(ctx, o.name ? [o.name] : []);
  const ledger = await openLedger(stateDir(ctx, cfg.logExports.state_dir));
  ctx.onClose(() => ledger.close());
  const { source } = await ctx.openSource();
  const diffs: string[] = [];
  let windows = 0;
  for (const job of jobs) {
    let runs: RunRow[] = ledger.delivered(job.name);
    if (o.run) {
      const r = ledger.get(o.run);
      if (!r) throw new CliError('verify', `no run ${o.run}`, { exitCode: ExitCode.usage });
      if (r.export !== job.name) continue;
      runs = runs.filter((x) => x.window_start === r.window_start && x.window_end === r.window_end);
    }
    if (!runs.length) continue;
    // Every fingerprinted window's rows now, in one grouped query, against the revision delivered.
    const printed = runs.filter((r) => r.fingerprint);
    const base = { ...windowFilter(job, { start: 0, end: 0 }, Date.now()), start: undefined, end: undefined };
    const nowFp = new Map<RunRow, WindowFingerprint>();
    if (printed.length) {
      const fps = await currentFingerprints(source, base, printed.map((r) => ({ start: r.window_start, end: r.window_end, upTo: { kind: (r.position_kind ?? 'none') as SourcePosition['kind'], value: r.position_value ?? 0 }, stored: JSON.parse(r.fingerprint!) as WindowFingerprint })), fingerprintColumns(job), await source.position());
      // Compared in the version each window was fingerprinted in.
      printed.forEach((r, i) => nowFp.set(r, fps[i]!.comparable));
    }
    const { dest } = await openDestination(ctx, job);
    try {
      for (const r of runs) {
        windows++;
        const m = JSON.parse(r.manifest ?? 'null') as Manifest | null;
        const label = `${job.name} ${isoMs(r.window_start)} → ${isoMs(r.window_end)}`;
        const found: string[] = [];
        if (!m) { found.push('no manifest recorded'); diffs.push(...found.map((f) => `${label}: ${f}`)); continue; }
        if (dest.kind === 'object' && dest.readObject) {
          const mo = await dest.readObject(r.manifest_key!);
          if (!mo) found.push(`manifest ${r.manifest_key} is missing`);
          else {
            const chunks: Buffer[] = [];
            for await (const c of mo) chunks.push(Buffer.from(c));
            try {
              const remote = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Manifest;
              if (remote.rows !== m.rows || remote.files.length !== m.files.length) found.push(`manifest ${r.manifest_key} differs from the ledger (${remote.rows} rows/${remote.files.length} files vs ${m.rows}/${m.files.length})`);
            } catch { found.push(`manifest ${r.manifest_key} is not valid JSON`); }
          }
          for (const f of m.files) {
            const s = await dest.readObject(f.key);
            if (!s) { found.push(`${f.key} is missing`); continue; }
            const h = createHash('sha256');
            let bytes = 0;
            for await (const c of s) { h.update(c as Buffer); bytes += (c as Buffer).length; }
            if (bytes !== f.bytes) found.push(`${f.key}: ${bytes} bytes, manifest says ${f.bytes}`);
            else if (h.digest('hex') !== f.sha256) found.push(`${f.key}: sha256 differs from the manifest`);
          }
        } else if (dest.kind === 'table' && dest.countWindow && !m.transformations.some((t) => t.type === 'aggregate')) {
          const n = await dest.countWindow({ start: r.window_start, end: r.window_end });
          if (n !== m.rows) found.push(`the table holds ${n} rows of the window, the manifest says ${m.rows}`);
        }
        if (!m.transformations.some((t) => t.type === 'aggregate')) {
          const upTo: SourcePosition = m.source.position;
          const filter = windowFilter(job, { start: r.window_start, end: r.window_end }, Date.now());
          const n = await source.count(filter, upTo.kind === 'none' ? undefined : { upTo });
          if (n !== m.rows) found.push(`the DB now has ${n} rows in the window, the manifest says ${m.rows}${n > m.rows ? ' (late rows not delivered yet? run `bifrost-logs run`)' : ' (rows deleted by retention?)'}`);
        }
        const fp = nowFp.get(r);
        if (fp) {
          const old = JSON.parse(r.fingerprint!) as WindowFingerprint;
          if (!sameFingerprint(old, fp)) {
            const what: string[] = [];
            if (old.rows !== fp.rows) what.push(`rows ${old.rows} → ${fp.rows}`);
            if (Math.abs(old.cost - fp.cost) >= 1e-9) what.push(`cost ${+old.cost.toFixed(6)} → ${+fp.cost.toFixed(6)}`);
            if (old.tokens !== fp.tokens) what.push(`tokens ${old.tokens} → ${fp.tokens}`);
            if (!what.length) what.push('values of delivered rows (status, latency, error details, token usage…)');
            const inLookback = job.restateLookbackMs > 0 && r.window_end > Date.now() - job.restateLookbackMs;
            found.push(`rows changed since revision ${r.revision ?? 1} was delivered: ${what.join(', ')} (${inLookback ? 'run `bifrost-logs run` to restate the window' : 'the window is older than restate_lookback_secs, so `run` does not restate it: raise restate_lookback_secs to cover it'})`);
          }
        }
        diffs.push(...found.map((f) => `${label}: ${f}`));
        if (o.json) await ctx.out.write(JSON.stringify({ export: job.name, window_start: isoMs(r.window_start), window_end: isoMs(r.window_end), ok: !found.length, revision: m.revision ?? 1, rows: m.rows, files: m.files.length, differences: found }) + '\n');
        else if (!found.length) ctx.log.info(`ok  ${label}: ${m.rows} rows, ${m.files.length} file(s)`);
      }
    } finally {
      await dest.close();
    }
  }
  if (!windows) ctx.log.info('no delivered windows to verify');
  if (diffs.length) {
    if (!o.json) for (const d of diffs) process.stderr.write(`DIFF ${d}\n`);
    throw new CliError('verify the delivered exports', `${diffs.length} difference(s) found`, { exitCode: ExitCode.dataErr });
  }
  return 0;
}
