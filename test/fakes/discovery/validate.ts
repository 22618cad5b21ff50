/**
 * Checks HTTP requests and JSON bodies against a Google API discovery document (the format
 * Google publishes its REST APIs in: https://developers.google.com/discovery/v1/reference/apis).
 *
 * The documents next to this file are Google's own (see README.md here for their origin). Rules,
 * following the proto3 JSON mapping the Google front ends apply:
 * - `$ref` names a schema of the document;
 * - an object accepts only the properties its schema lists (an unknown property is an error, as
 *   the real service answers 400 "Invalid JSON payload received. Unknown name"), or, when the
 *   schema has `additionalProperties`, any key whose value matches that schema;
 * - string / boolean / integer / number / array / any as declared; int64 / uint64 strings accept a
 *   JSON number or a decimal string, integers accept an integral number or a decimal string,
 *   numbers a number or "NaN" / "Infinity" / "-Infinity" or a numeric string; `byte` is base64;
 * - `enum` lists the allowed strings where the document gives them;
 * - `null` stands for an absent field;
 * - query parameters must be the method's or the API's global ones.
 */
import { readFileSync } from 'node:fs';

export interface DiscoverySchema {
  type?: string; format?: string; $ref?: string; enum?: string[];
  properties?: Record<string, DiscoverySchema>; additionalProperties?: DiscoverySchema; items?: DiscoverySchema;
}
export interface DiscoveryMethod {
  id: string; httpMethod: string; path: string;
  parameters?: Record<string, DiscoverySchema & { location?: string }>;
  request?: { $ref: string }; response?: { $ref: string };
  mediaUpload?: { protocols: Record<string, { path: string }> };
}
export interface DiscoveryDoc {
  servicePath: string; parameters: Record<string, unknown>;
  schemas: Record<string, DiscoverySchema>; resources: Record<string, { methods?: Record<string, DiscoveryMethod>; resources?: DiscoveryDoc['resources'] }>;
}

export function loadDiscovery(name: string): DiscoveryDoc {
  return JSON.parse(readFileSync(new URL(`./${name}`, import.meta.url), 'utf8')) as DiscoveryDoc;
}

/** Errors (path: what) of `value` against `schema`; empty when it matches. */
export function validateValue(doc: DiscoveryDoc, schema: DiscoverySchema, value: unknown, at = '$', out: string[] = [], depth = 0): string[] {
  if (value === null || value === undefined) return out;
  if (depth > 64) return out;
  if (schema.$ref) {
    const s = doc.schemas[schema.$ref];
    if (!s) { out.push(`${at}: unknown schema ${schema.$ref}`); return out; }
    return validateValue(doc, s, value, at, out, depth + 1);
  }
  const t = schema.type;
  const bad = (what: string) => out.push(`${at}: ${what} (got ${JSON.stringify(value)?.slice(0, 80)})`);
  switch (t) {
    case 'any': case undefined: return out;
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) { bad('expected an object'); return out; }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        const p = schema.properties?.[k];
        if (p) validateValue(doc, p, v, `${at}.${k}`, out, depth + 1);
        else if (schema.additionalProperties) validateValue(doc, schema.additionalProperties, v, `${at}.${k}`, out, depth + 1);
        else out.push(`${at}: unknown property "${k}"`);
      }
      return out;
    }
    case 'array':
      if (!Array.isArray(value)) { bad('expected an array'); return out; }
      value.forEach((v, i) => schema.items && validateValue(doc, schema.items, v, `${at}[${i}]`, out, depth + 1));
      return out;
    case 'boolean':
      if (typeof value !== 'boolean') bad('expected a boolean');
      return out;
    case 'integer':
      if (!(typeof value === 'number' ? Number.isInteger(value) : typeof value === 'string' && /^-?\d+$/.test(value))) bad('expected an integer');
      return out;
    case 'number':
      if (!(typeof value === 'number' || (typeof value === 'string' && /^(NaN|-?Infinity|-?\d+(\.\d*)?([eE][-+]?\d+)?)$/.test(value)))) bad('expected a number');
      return out;
    case 'string': {
      if (schema.format === 'int64' || schema.format === 'uint64') {
        const ok = typeof value === 'number' ? Number.isInteger(value) : typeof value === 'string' && (schema.format === 'int64' ? /^-?\d+$/ : /^\d+$/).test(value);
        if (!ok) bad(`expected an ${schema.format} (decimal string)`);
        return out;
      }
      if (typeof value !== 'string') { bad('expected a string'); return out; }
      if (schema.format === 'byte' && !/^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) bad('expected base64');
      if (schema.enum && !schema.enum.includes(value)) bad(`expected one of ${schema.enum.join(', ')}`);
      return out;
    }
    default:
      out.push(`${at}: schema type ${t} not understood`);
      return out;
  }
}

export interface MatchedMethod { method: DiscoveryMethod; upload: boolean }

/** The discovery method a request addresses (path relative to the host), or undefined. */
export function matchMethod(doc: DiscoveryDoc, httpMethod: string, path: string): MatchedMethod | undefined {
  const all: DiscoveryMethod[] = [];
  const walk = (r: DiscoveryDoc['resources']) => { for (const v of Object.values(r)) { all.push(...Object.values(v.methods ?? {})); if (v.resources) walk(v.resources); } };
  walk(doc.resources);
  const re = (tpl: string) => new RegExp(`^${tpl.replace(/[.*?()[\]\\^$|]/g, '\\$&').replace(/\{\+?[^}]+\}/g, '[^/]+')}$`);
  for (const m of all) {
    if (m.httpMethod !== httpMethod) continue;
    if (re(`/${doc.servicePath}${m.path}`).test(path)) return { method: m, upload: false };
    for (const p of Object.values(m.mediaUpload?.protocols ?? {})) if (re(p.path).test(path)) return { method: m, upload: true };
  }
  return undefined;
}

/** Query parameters the method does not declare (upload session ids aside). */
export function unknownQueryParams(doc: DiscoveryDoc, m: MatchedMethod, q: URLSearchParams): string[] {
  const bad: string[] = [];
  for (const k of new Set(q.keys())) {
    if (m.upload && k === 'upload_id') continue;
    const name = k.split('.')[0]!;
    if (doc.parameters[k] || m.method.parameters?.[k] || m.method.parameters?.[name]) continue;
    bad.push(`query parameter "${k}" is not a parameter of ${m.method.id}`);
  }
  return bad;
}
