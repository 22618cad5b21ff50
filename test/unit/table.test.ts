import { describe, expect, it } from 'vitest';
import { createTableWriter, displayWidth, fitTable } from '../../src/cli/table.js';

describe('the table printer', () => {
  it('streams: one header, the first page\'s widths kept, longer later values wrapped, nothing cut', () => {
    const t = createTableWriter(['request_id', 'latency_ms', 'note'], 60);
    const first = t.page([{ request_id: 'a', latency_ms: 12.5, note: 'short' }]);
    const later = t.page([{ request_id: 'b', latency_ms: 1234, note: 'a much longer note than the first page had 世界' }]);
    const text = first + later + t.end();
    const lines = text.trimEnd().split('\n');
    expect(lines.filter((l) => l.includes('request_id'))).toHaveLength(1);
    expect(new Set(lines.map(displayWidth)).size).toBe(1);
    expect(lines[0]!.startsWith('┌') && lines.at(-1)!.startsWith('└')).toBe(true);
    expect(lines.filter((l) => l.startsWith('│')).map((l) => l.split('│')[3]!.trim()).join('').replace(/ /g, '')).toContain('a much longer note than the first page had 世界'.replace(/ /g, ''));
    expect(text).toMatch(/│ +1,234 ms │/);
  });

  it('counts wide characters as two columns and wraps them whole', () => {
    const { text } = fitTable(['note'], [{ note: '世界世界世界世界世界世界世界世界世界世界' }], 20);
    for (const l of text.split('\n')) expect(displayWidth(l)).toBeLessThanOrEqual(20);
    expect(text.replace(/[│\s┌┐└┘─]/g, '')).toBe('note世界世界世界世界世界世界世界世界世界世界');
  });
});
