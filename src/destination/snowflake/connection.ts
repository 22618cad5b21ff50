import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type * as SnowflakeSdk from 'snowflake-sdk';
import { configError, scrubMessage, type CliError } from '../../errors.js';
import type { DestinationEnv } from '../types.js';
import { snowflakeError } from './errors.js';
import type { SnowflakeConfig } from './schema.js';

export type Sdk = typeof SnowflakeSdk;
export type Connection = SnowflakeSdk.Connection;

/** The private key as unencrypted PKCS#8 PEM (what the driver signs its JWT with). */
export async function loadPrivateKey(cfg: SnowflakeConfig['credentials']): Promise<string | undefined> {
  let pem = cfg.private_key;
  let from = 'credentials.private_key';
  if (!pem && cfg.private_key_path) {
    from = cfg.private_key_path;
    try {
      pem = await readFile(cfg.private_key_path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw configError('read the Snowflake private key', `${cfg.private_key_path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
    }
  }
  if (!pem) return undefined;
  try {
    const key = createPrivateKey({ key: pem.replace(/\\n/g, '\n'), format: 'pem', ...(cfg.private_key_passphrase ? { passphrase: cfg.private_key_passphrase } : {}) });
    return key.export({ type: 'pkcs8', format: 'pem' }).toString();
  } catch (err) {
    // Never echo the key: only what is wrong with it.
    const why = /passphrase|decrypt|bad decrypt/i.test((err as Error).message) ? 'cannot be decrypted (check private_key_passphrase)' : 'is not a PEM private key';
    throw configError('read the Snowflake private key', `${from} ${why}`, 'a PKCS#8 PEM key, as made by `openssl genrsa 2048 | openssl pkcs8 -topk8 -nocrypt`');
  }
}

/** The driver's connection options from the config (`access_url` overrides the account's URL). */
export function connectionOptions(cfg: SnowflakeConfig, privateKey: string | undefined): SnowflakeSdk.ConnectionOptions {
  const o: SnowflakeSdk.ConnectionOptions = {
    account: cfg.account,
    username: cfg.credentials.username,
    database: cfg.database,
    schema: cfg.schema,
    application: 'bifrost_logs',
    sfRetryMaxLoginRetries: 3,
    // No answer within request_timeout_secs (default 60) fails the request.
    timeout: Math.round((cfg.request_timeout_secs ?? 60) * 1000),
    arrayBindingThreshold: 100_000,
  };
  if (cfg.access_url) o.accessUrl = cfg.access_url.replace(/\/+$/, '');
  if (cfg.warehouse) o.warehouse = cfg.warehouse;
  if (cfg.role) o.role = cfg.role;
  if (privateKey) {
    o.authenticator = 'SNOWFLAKE_JWT';
    o.privateKey = privateKey;
  } else {
    o.password = cfg.credentials.password;
  }
  return o;
}

/** One session per run, opened on first use (and again when the server dropped it). */
export class SnowflakeSession {
  private conn: Connection | null = null;
  private connecting: Promise<Connection> | null = null;
  private readonly secrets: string[];

  constructor(private readonly cfg: SnowflakeConfig, private readonly sdk: Sdk, private readonly privateKey: string | undefined, private readonly env: DestinationEnv, readonly where: string) {
    this.secrets = [cfg.credentials.password, cfg.credentials.private_key, cfg.credentials.private_key_passphrase, privateKey]
      .filter((s): s is string => typeof s === 'string' && s.length >= 4);
  }

  /** A driver message without credentials, on one line. */
  scrub(msg: string): string {
    // Snowflake's messages span lines ("SQL compilation error:\nTable … does not exist"): one line.
    let m = msg;
    for (const s of this.secrets) m = m.split(s).join('***');
    return scrubMessage(scrubMessage(m).trim().replace(/\s*\n\s*/g, ' '));
  }

  fail(action: string, err: unknown): CliError {
    return snowflakeError(`${action} (${this.where})`, err, (m) => this.scrub(m));
  }

  async connection(): Promise<Connection> {
    if (this.conn?.isUp()) return this.conn;
    if (this.connecting) return this.connecting;
    this.connecting = new Promise<Connection>((resolveConn, reject) => {
      let c: Connection;
      try {
        c = this.sdk.createConnection(connectionOptions(this.cfg, this.privateKey));
      } catch (err) {
        reject(this.fail('connect to snowflake', err));
        return;
      }
      c.connect((err) => (err ? reject(this.fail('connect to snowflake', err)) : resolveConn(c)));
    });
    try {
      this.conn = await this.connecting;
      return this.conn;
    } finally {
      this.connecting = null;
    }
  }

  /** One statement; rows as objects keyed by upper-cased column names. */
  exec<R = Record<string, unknown>>(c: Connection, sqlText: string, binds?: SnowflakeSdk.Binds | unknown[]): Promise<R[]> {
    this.env.signal?.throwIfAborted();
    return new Promise<R[]>((res, rej) => {
      c.execute({
        sqlText,
        ...(binds && binds.length ? { binds: binds as SnowflakeSdk.Binds } : {}),
        complete: (err, _stmt, rows) => (err ? rej(err) : res((rows ?? []) as R[])),
      });
    });
  }

  async close(): Promise<void> {
    const c = this.conn;
    this.conn = null;
    if (c) await new Promise<void>((r) => c.destroy(() => r()));
  }
}

let configured = false;

/** The driver logs to ./snowflake.log by default: its messages go to --verbose instead, scrubbed. */
export function configureDriver(sdk: Sdk, env: DestinationEnv): void {
  if (configured) return;
  configured = true;
  const out = (m: string) => env.log.verbose(`snowflake-sdk: ${scrubMessage(String(m)).split('\n')[0]}`);
  sdk.configure({ logLevel: 'WARN', additionalLogToConsole: false, customLogger: { error: out, warn: out, info: out, debug: out, trace: out } });
}
