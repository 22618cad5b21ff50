import { DateTime } from '../util/luxon.js';
import type { Schedule } from './job.js';

const WEEKDAY: Record<string, number> = { monday: 1, tuesday: 2, wednesday: 3, thursday: 4, friday: 5, saturday: 6, sunday: 7 };

function hm(s: Schedule): { hour: number; minute: number } {
  const [h, m] = s.time.split(':').map(Number);
  return { hour: h!, minute: m! };
}

/**
 * The slot on a local date. A time that does not exist that day (spring
 * forward) moves forward with the clock, as luxon does; a repeated time
 * (fall back) takes its first occurrence.
 */
function slotOn(s: Schedule, date: DateTime): DateTime {
  const { hour, minute } = hm(s);
  return DateTime.fromObject({ year: date.year, month: date.month, day: date.day, hour, minute }, { zone: s.timezone });
}

function monthlySlot(s: Schedule, year: number, month: number): DateTime {
  const first = DateTime.fromObject({ year, month, day: 1 }, { zone: s.timezone });
  const day = Math.min(Number(s.day ?? 1), first.daysInMonth!);
  return slotOn(s, first.set({ day }));
}

/** The latest slot at or before `t` (epoch ms). */
export function slotAtOrBefore(s: Schedule, t: number): number {
  const local = DateTime.fromMillis(t, { zone: s.timezone });
  switch (s.frequency) {
    case 'hourly': {
      let c = local.startOf('hour').set({ minute: hm(s).minute });
      if (c.toMillis() > t) c = c.minus({ hours: 1 });
      return c.toMillis();
    }
    case 'daily': {
      let c = slotOn(s, local);
      if (c.toMillis() > t) c = slotOn(s, local.minus({ days: 1 }));
      return c.toMillis();
    }
    case 'weekly': {
      const wd = WEEKDAY[String(s.day ?? 'monday')] ?? 1;
      const back = (local.weekday - wd + 7) % 7;
      let d = local.minus({ days: back });
      let c = slotOn(s, d);
      if (c.toMillis() > t) { d = d.minus({ days: 7 }); c = slotOn(s, d); }
      return c.toMillis();
    }
    case 'monthly': {
      let c = monthlySlot(s, local.year, local.month);
      if (c.toMillis() > t) {
        const p = local.startOf('month').minus({ days: 1 });
        c = monthlySlot(s, p.year, p.month);
      }
      return c.toMillis();
    }
  }
}

/** The slot after slot `slot`. */
export function nextSlot(s: Schedule, slot: number): number {
  const local = DateTime.fromMillis(slot, { zone: s.timezone });
  switch (s.frequency) {
    case 'hourly': return slotAtOrBefore(s, slot + 3_600_000 + 60_000);
    case 'daily': {
      // Step by local date, not by 24 h, so DST days stay one slot long.
      const n = slotOn(s, local.startOf('day').plus({ days: 1 }));
      return n.toMillis() > slot ? n.toMillis() : slotOn(s, local.startOf('day').plus({ days: 2 })).toMillis();
    }
    case 'weekly': return slotOn(s, local.startOf('day').plus({ days: 7 })).toMillis();
    case 'monthly': {
      const n = local.startOf('month').plus({ months: 1 });
      return monthlySlot(s, n.year, n.month).toMillis();
    }
  }
}

/** The first slot strictly after `t`. */
export function firstSlotAfter(s: Schedule, t: number): number {
  const at = slotAtOrBefore(s, t);
  return nextSlot(s, at);
}

/** The slot before slot `slot`. */
export function prevSlot(s: Schedule, slot: number): number {
  return slotAtOrBefore(s, slot - 1);
}

export interface PlannedWindow {
  start: number;
  end: number;
}

/**
 * Windows that are due and not delivered, oldest first. A slot is due once
 * the settle lag has passed after it. Catch-up continues from the end of the
 * last delivered window; a new export starts at `backfillFrom`, or with the
 * window that ends at the latest due slot.
 */
export function dueWindows(s: Schedule, o: { now: number; settleLagMs: number; lastEnd?: number; backfillFrom?: number; max?: number }): PlannedWindow[] {
  const latest = slotAtOrBefore(s, o.now - o.settleLagMs);
  const out: PlannedWindow[] = [];
  let start: number;
  if (o.lastEnd !== undefined) start = o.lastEnd;
  else if (o.backfillFrom !== undefined) start = o.backfillFrom;
  else return [{ start: prevSlot(s, latest), end: latest }];
  const max = o.max ?? 10_000;
  while (out.length < max) {
    const end = firstSlotAfter(s, start);
    if (end > latest) break;
    out.push({ start, end });
    start = end;
  }
  return out;
}
