import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { type ParseError, parse as parseJsonc, printParseErrorCode } from 'jsonc-parser';
import { ConfigError } from './config.js';

/**
 * Run config files: JSON with comments (`//`, `/* *\/`) and trailing commas, an optional `extends`
 * (another config file, or a list of them, whose keys this file's override), and overrides from the
 * command line (`--set key=value`, as mmsegmentation's `--cfg-options`).
 */

type Json = Record<string, unknown>;

/** Keys that hold paths: taken relative to the file that gives them (or, from `--set`, to the working directory). */
export const PATH_KEYS = ['dataset.root', 'init.from'];

const isObject = (v: unknown): v is Json => !!v && typeof v === 'object' && !Array.isArray(v);

/** `over` on top of `base`: objects merge key by key, anything else (arrays too) replaces. */
export function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(over)) out[key] = isObject(value) && isObject(base[key]) ? deepMerge(base[key] as Json, value) : value;
  return out;
}

function getPath(o: Json, path: string[]): unknown {
  return path.reduce<unknown>((v, k) => (isObject(v) ? v[k] : undefined), o);
}

function setPath(o: Json, path: string[], value: unknown): void {
  let at = o;
  for (const key of path.slice(0, -1)) {
    if (!isObject(at[key])) at[key] = {};
    at = at[key] as Json;
  }
  at[path[path.length - 1]] = value;
}

function resolvePaths(o: Json, base: string): void {
  for (const key of PATH_KEYS) {
    const path = key.split('.');
    const value = getPath(o, path);
    if (typeof value === 'string' && value) setPath(o, path, resolve(base, value));
  }
}

/** Line and column (1-based) of an offset in a text. */
function position(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${before[before.length - 1].length + 1}`;
}

/**
 * Reads a run config file: comments allowed, paths made absolute relative to the file, `extends`
 * followed (relative to the file; a cycle is refused). Returns the merged raw config, without `extends`.
 */
export async function readConfigFile(file: string, chain: string[] = []): Promise<Json> {
  const absolute = resolve(file);
  if (chain.includes(absolute)) throw new ConfigError(`${file}: extends itself through ${[...chain, absolute].join(' -> ')}; remove one of the extends`);
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    const from = chain.length ? ` (extended by ${chain[chain.length - 1]})` : '';
    throw new ConfigError(`${file}: cannot read the run config${from} (${error.code ?? error.message})`);
  });
  const errors: ParseError[] = [];
  const raw = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length) {
    const first = errors[0];
    throw new ConfigError(`${file}: not valid JSON (${printParseErrorCode(first.error)} at ${position(text, first.offset)}); comments and trailing commas are allowed`);
  }
  if (!isObject(raw)) throw new ConfigError(`${file}: a run config is a JSON object ({ "backbone": ..., "dataset": ..., ... }), not ${JSON.stringify(raw)?.slice(0, 40)}`);
  const base = dirname(absolute);
  const { extends: parents, ...own } = raw;
  resolvePaths(own, base);
  const list = parents === undefined ? [] : Array.isArray(parents) ? parents : [parents];
  if (!list.every((p): p is string => typeof p === 'string' && p.length > 0)) {
    throw new ConfigError(`${file}: extends is ${JSON.stringify(parents)}; expected the path of another run config, or a list of them (relative to ${file})`);
  }
  let merged: Json = {};
  for (const parent of list) merged = deepMerge(merged, await readConfigFile(resolve(base, parent), [...chain, absolute]));
  return deepMerge(merged, own);
}

/** The value of `--set key=value`: JSON when it parses as JSON (numbers, booleans, arrays, objects, quoted strings), else the text itself. */
function parseValue(text: string): unknown {
  const errors: ParseError[] = [];
  const value = parseJsonc(text, errors, { allowTrailingComma: true });
  return errors.length || text.trim() === '' ? text : value;
}

/**
 * Applies `--set key=value` overrides (dotted keys, e.g. `backbone.options.base=16`,
 * `dataset.evalSplits=["val"]`) on top of a raw config. Paths given this way are relative to the
 * working directory.
 */
export function applyOverrides(raw: Json, sets: string[]): Json {
  const out: Json = structuredClone(raw);
  for (const set of sets) {
    const at = set.indexOf('=');
    const key = at > 0 ? set.slice(0, at).trim() : '';
    if (!key || key.split('.').some((k) => !k)) {
      throw new ConfigError(`--set ${set}: expected key=value with a dotted key of the run config, e.g. --set iterations=2000 or --set backbone.options.base=16`);
    }
    let value = parseValue(set.slice(at + 1));
    if (PATH_KEYS.includes(key) && typeof value === 'string') value = resolve(value);
    setPath(out, key.split('.'), value);
  }
  return out;
}
