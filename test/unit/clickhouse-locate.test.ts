import { describe, expect, it } from 'vitest';
import { specFromBlock, specFromDbArg } from '../../src/source/locate.js';
import { describeCh } from '../../src/source/clickhouse/clickhouse-source.js';

describe('ClickHouse source selection', () => {
  it('clickhouse://, clickhouses:// and https:// URLs', () => {
    expect(specFromDbArg('clickhouse://u:p%40ss@ch.example:8123/bifrost', '--db')).toMatchObject({ kind: 'clickhouse', conn: { url: 'http://ch.example:8123', username: 'u', password: 'p@ss', database: 'bifrost' } });
    expect(specFromDbArg('clickhouses://u:p@ch.example/logs', '--db')).toMatchObject({ conn: { url: 'https://ch.example:8443', database: 'logs' } });
    expect(specFromDbArg('https://default:p@abc.clickhouse.cloud:8443/', '--db')).toMatchObject({ conn: { url: 'https://abc.clickhouse.cloud:8443', username: 'default', database: 'default' } });
    expect(specFromDbArg('http://ch:8123/db?secure=false', '--db')).toMatchObject({ conn: { url: 'http://ch:8123', database: 'db' } });
  });

  it("Bifrost's logs_store block of type clickhouse: HTTP ports whatever the protocol", () => {
    const base = { type: 'clickhouse', config: { host: 'ch', username: 'bf', password: 'pw', database: 'logs' } };
    expect(specFromBlock(base, '/', 'cfg')).toMatchObject({ kind: 'clickhouse', conn: { url: 'http://ch:8123', username: 'bf', password: 'pw', database: 'logs' } });
    expect(specFromBlock({ ...base, config: { ...base.config, port: 9000, protocol: 'native' } }, '/', 'cfg')).toMatchObject({ conn: { url: 'http://ch:8123' } });
    expect(specFromBlock({ ...base, config: { ...base.config, port: 18123, protocol: 'http' } }, '/', 'cfg')).toMatchObject({ conn: { url: 'http://ch:18123' } });
    expect(specFromBlock({ ...base, config: { ...base.config, secure: true } }, '/', 'cfg')).toMatchObject({ conn: { url: 'https://ch:8443' } });
  });

  it('the description names the user, never the password', () => {
    const d = describeCh({ url: 'https://ch:8443', username: 'bf', password: 'hunter2', database: 'logs' });
    expect(d).toBe('clickhouse https://bf@ch:8443/logs');
    expect(d).not.toContain('hunter2');
  });
});
