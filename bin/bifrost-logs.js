#!/usr/bin/env node
import { existsSync } from 'node:fs';

// The start-up bundle (scripts/bundle.mjs) when the build made one, else the compiled modules.
const bundle = new URL('../dist/bundle/main.js', import.meta.url);
const { start } = await import(existsSync(bundle) ? bundle.href : '../dist/cli/main.js');
start(process.argv);
