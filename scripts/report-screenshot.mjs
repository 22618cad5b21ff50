#!/usr/bin/env node
// Screenshots a report with headless Chromium: node scripts/report-screenshot.mjs demo/report.html docs/report.png [width]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const [input = 'demo/report.html', output = 'docs/report.png', width = '1280'] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), 'report-shot-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  viewport: { width: Number(width), height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
try {
  const page = await context.newPage();
  await page.goto(`file://${resolve(input)}`);
  await page.screenshot({ path: output, fullPage: true });
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.stderr.write(`wrote ${output}\n`);
