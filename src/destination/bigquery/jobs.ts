import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BigQuery, Job, TableMetadata } from '@google-cloud/bigquery';
import { CliError, ExitCode } from '../../errors.js';
import { withRetry } from '../../util/retry.js';
import { abortError } from '../object-store.js';
import type { DestinationEnv } from '../types.js';
import { requestTimeoutMs, uploadTimeoutMs, withDeadline } from './client.js';
import type { BqTableRef } from './dialect.js';
import { JobFailure, TRANSIENT_JOB_REASONS, bigqueryError, jobError, statusOf, type JobError } from './errors.js';
import type { BigQueryConfig } from './schema.js';

const POLL_MIN_MS = 100;
const POLL_MAX_MS = 2_000;
/** A job that is not DONE by then is reported (and left to BigQuery, which finishes or fails it). */
const JOB_TIMEOUT_MS = 6 * 3_600_000;
/** Attempts of one job (each with a new job id) when it fails for a transient reason. */
const JOB_ATTEMPTS = 3;

/** The API calls of one destination: each with its deadline, retried when transient, jobs run to completion. */
export class BigQueryApi {
  private jobSeq = 0;
  constructor(readonly bq: BigQuery, private readonly cfg: BigQueryConfig, private readonly env: DestinationEnv, readonly runId: string, private readonly where: string) {}

  fail(action: string, err: unknown): CliError {
    return bigqueryError(action, this.where, err);
  }

  /** One API call within request_timeout_secs (uploads: ten times that), retried on transient failures. */
  call<T>(fn: () => Promise<T>, o: { attempts?: number; upload?: boolean; signal?: boolean } = {}): Promise<T> {
    const ms = o.upload ? uploadTimeoutMs(this.cfg) : requestTimeoutMs(this.cfg);
    return withRetry(() => withDeadline(ms, fn), { attempts: o.attempts, ...(o.signal === false ? {} : { signal: this.env.signal }) });
  }

  table(ref: BqTableRef) {
    return this.bq.dataset(ref.datasetId, { projectId: ref.projectId }).table(ref.tableId);
  }

  /** Creates a table; one already there (created meanwhile, or by an attempt whose answer was lost) is fine. */
  createTable(ref: BqTableRef, meta: TableMetadata): Promise<void> {
    return this.call(async () => {
      try {
        await this.bq.dataset(ref.datasetId, { projectId: ref.projectId }).createTable(ref.tableId, meta);
      } catch (err) {
        if (statusOf(err) !== 409) throw err;
      }
    });
  }

  /** Table metadata, or null when the table does not exist. */
  async metadata(ref: BqTableRef): Promise<TableMetadata | null> {
    try {
      return await this.call(async () => (await this.table(ref).getMetadata())[0] as TableMetadata, { attempts: 4 });
    } catch (err) {
      // "Not found: Table p:d.t" means no table yet; "Not found: Dataset p:d" is a config error.
      if (statusOf(err) === 404 && !/Not found: Dataset/i.test((err as Error).message ?? '')) return null;
      throw err;
    }
  }

  private nextJobId(kind: string): string {
    return `bifrost_logs_${kind}_${this.runId}_${++this.jobSeq}_${randomBytes(3).toString('hex')}`;
  }

  /** Waits for a job to be DONE; a failed job throws its error. */
  private async waitJob(job: Job, action: string): Promise<Record<string, any>> {
    let delay = POLL_MIN_MS;
    const deadline = Date.now() + JOB_TIMEOUT_MS;
    let meta = job.metadata as Record<string, any> | undefined;
    for (;;) {
      if (meta?.status?.state === 'DONE') {
        const er = meta.status.errorResult as JobError | undefined;
        if (er) throw new JobFailure(er.reason ?? 'error', jobError(`${action} (${this.where})`, er, meta.status.errors ?? []));
        return meta;
      }
      if (this.env.signal?.aborted) throw abortError('the load was aborted');
      if (Date.now() > deadline) throw new CliError(`${action} (${this.where})`, `job ${job.id} is still running after ${JOB_TIMEOUT_MS / 3_600_000} h`, { exitCode: ExitCode.tempFail });
      await sleep(delay, undefined, { signal: this.env.signal });
      delay = Math.min(POLL_MAX_MS, delay * 2);
      meta = await this.call(async () => (await job.getMetadata())[0] as Record<string, any>);
    }
  }

  /**
   * Inserts a job with a fixed id, retried on transient failures: an attempt
   * that reached BigQuery but lost its answer comes back as 409 and the
   * existing job is used, so a job never runs twice.
   */
  private insertJob(jobId: string, create: () => Promise<Job>, upload: boolean): Promise<Job> {
    return this.call(async () => {
      try {
        return await create();
      } catch (err) {
        if (statusOf(err) !== 409) throw err;
        const job = this.bq.job(jobId, this.cfg.location ? { location: this.cfg.location } : undefined);
        const [m] = await job.getMetadata();
        job.metadata = m;
        return job;
      }
    }, { upload });
  }

  /**
   * Runs a job to completion: inserted with a fixed id (see insertJob), polled
   * until DONE, and run again under a new id when it failed for a transient
   * reason (a failed job changed nothing: a load appends nothing, a script's
   * transaction is rolled back).
   */
  async runJob(kind: 'load' | 'query', action: string, create: (jobId: string) => Promise<Job>): Promise<{ job: Job; meta: Record<string, any> }> {
    for (let attempt = 1; ; attempt++) {
      const jobId = this.nextJobId(kind);
      try {
        const job = await this.insertJob(jobId, () => create(jobId), kind === 'load');
        return { job, meta: await this.waitJob(job, action) };
      } catch (err) {
        if (err instanceof JobFailure) {
          if (attempt < JOB_ATTEMPTS && TRANSIENT_JOB_REASONS.has(err.reason) && !this.env.signal?.aborted) {
            this.env.log.verbose(`bigquery: job ${jobId} failed (${err.reason}), running it again`);
            await sleep(1000 * attempt, undefined, { signal: this.env.signal });
            continue;
          }
          throw err.error;
        }
        throw this.fail(action, err);
      }
    }
  }

  /**
   * Runs a query job to completion. Parameters are Dates, which the SDK sends
   * as TIMESTAMP values (an ISO string typed TIMESTAMP would be sent as NULL).
   */
  async query(action: string, sql: string, params: Record<string, Date> = {}): Promise<Job> {
    const { job } = await this.runJob('query', action, async (jobId) => {
      const [job] = await this.bq.createQueryJob({
        query: sql, useLegacySql: false, jobId, labels: { tool: 'bifrost-logs' },
        ...(Object.keys(params).length ? { params } : {}),
        ...(this.cfg.location ? { location: this.cfg.location } : {}),
      });
      return job;
    });
    return job;
  }

  /** A dry run of a statement: proves the rights it needs, changes nothing. */
  async dryRun(sql: string, params: Record<string, Date> = {}): Promise<void> {
    await this.call(async () => {
      await this.bq.createQueryJob({
        query: sql, useLegacySql: false, dryRun: true,
        ...(Object.keys(params).length ? { params } : {}),
        ...(this.cfg.location ? { location: this.cfg.location } : {}),
      });
    }, { attempts: 3 });
  }
}
