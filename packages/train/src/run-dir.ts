import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { differingKeys } from '@dropclass/datasets';
import { Checkpoints } from './checkpoint.js';
import { RUN_LOCK, checkRunLock } from './run-lock.js';
import type { RunConfig } from './config.js';
import { CONFIG_HASH, CONFIG_JSON, EVAL_JSON, METRICS_JSONL } from './paths.js';

/** JSON with object keys sorted at every level, so equal configs serialise (and hash) the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/** SHA-256 of the resolved run config (canonical JSON). */
export function configHash(config: RunConfig): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex');
}

/** Writes `config.json` (the resolved config) and `config-hash` into a run directory. */
export async function writeRunConfig(dir: string, config: RunConfig): Promise<void> {
  await writeFile(join(dir, CONFIG_JSON), JSON.stringify(config, null, 2));
  await writeFile(join(dir, CONFIG_HASH), `${configHash(config)}\n`);
}

/** A run directory holds a run of another config than the one asked for. */
export class RunConfigMismatchError extends Error {}

export type RunState = 'new' | 'partial' | 'complete';

/**
 * What a run directory holds for `config`: nothing yet (`new`), a partial run of this very config
 * (`partial`, to resume) or a finished one (`complete`, to reuse). A directory whose recorded config
 * hash differs (or that records none) throws, naming the keys that differ and how to start fresh.
 */
export async function runState(dir: string, config: RunConfig, freshHint: string): Promise<RunState> {
  const hasCheckpoint = (await new Checkpoints(join(dir, 'checkpoints')).latest()) !== undefined;
  const hasEval = existsSync(join(dir, EVAL_JSON));
  if (!hasCheckpoint && !hasEval) return 'new';
  const hashFile = join(dir, CONFIG_HASH);
  const recorded = existsSync(hashFile) ? (await readFile(hashFile, 'utf8')).trim() : undefined;
  const wanted = configHash(config);
  if (recorded !== wanted) {
    let keys = ['(no config-hash recorded: a run from an older version)'];
    if (recorded !== undefined && existsSync(join(dir, CONFIG_JSON))) {
      const stored = JSON.parse(await readFile(join(dir, CONFIG_JSON), 'utf8')) as unknown;
      const differing = differingKeys(stored, JSON.parse(JSON.stringify(config)));
      keys = differing.length ? differing : ['(config.json was edited after the run started)'];
    }
    throw new RunConfigMismatchError(
      `${dir} holds a ${hasEval ? 'finished' : 'partial'} run of another config (${CONFIG_HASH} ${recorded?.slice(0, 12) ?? 'missing'}, this config ${wanted.slice(0, 12)}); ` +
        `differing: ${keys.join(', ')}. It is not reused: ${freshHint}`,
    );
  }
  return hasEval ? 'complete' : 'partial';
}

/**
 * The file that marks a folder as a DropClass run: only a folder that carries it is ever removed
 * or emptied by a command. It records each training session's backend, threads and kernels.
 */
export const RUN_MARKER = 'dropclass-run.json';
export const RUN_MARKER_FORMAT = 'dropclass-run/1';

/** What a run's marker records. */
export interface RunMarker {
  format: typeof RUN_MARKER_FORMAT;
  created: string;
  /** Each time training started or resumed here: from which step, on what backend, threads and kernels. */
  sessions: RunSession[];
}

export interface RunSession {
  started: string;
  fromStep: number;
  host: string;
  pid: number;
  backend: string;
  /** wasm's own threads (1 on other backends, and on wasm where the native kernels run: theirs are in `kernels`). */
  threads: number;
  /** The kernels that ran: `native (avx512f+fma, 2 threads)`, `wasm`, or the backend's own. */
  kernels: string;
}

/** A folder that a command would remove or write into is not one of its own. */
export class NotARunError extends Error {}

/** The entries of a folder, or undefined when there is no folder there. */
async function entries(dir: string): Promise<string[] | undefined> {
  const info = await stat(dir).catch(() => undefined);
  if (!info) return undefined;
  if (!info.isDirectory()) throw new NotARunError(`${dir} is a file, not a folder; give a folder for the run`);
  return readdir(dir);
}

function describeEntries(names: string[]): string {
  const shown = names.slice(0, 5).join(', ');
  return `${names.length} entr${names.length === 1 ? 'y' : 'ies'}: ${shown}${names.length > 5 ? ', ...' : ''}`;
}

/**
 * Removes `dir` only when it carries `marker` (or is empty); a folder without it is refused with
 * what it holds, and nothing in it is touched. `what` names the kind of folder in the message.
 */
export async function removeMarked(dir: string, marker: string, what: string, hint: string): Promise<void> {
  const names = await entries(dir);
  if (names === undefined) return;
  if (names.length > 0 && !names.includes(marker)) {
    throw new NotARunError(`${dir} is not ${what} (it has no ${marker}) and holds ${describeEntries(names)}. Nothing was removed. ${hint}`);
  }
  await rm(dir, { recursive: true, force: true });
}

/** A run written before runs were marked: its config hash and a checkpoint pointer are there. */
function looksLikeUnmarkedRun(names: string[]): boolean {
  return names.includes(CONFIG_HASH) && names.includes('checkpoints');
}

function notARun(dir: string, names: string[], action: string): NotARunError {
  const old = looksLikeUnmarkedRun(names)
    ? ` It looks like a run written by an older version of dropclass: continue it (train --resume, or the main job without --fresh), which marks it, or remove it yourself.`
    : ' Choose another --out, or empty or remove that folder yourself if its contents are yours to lose.';
  return new NotARunError(`${dir} is not a DropClass run (it has no ${RUN_MARKER}) and holds ${describeEntries(names)}; ${action}.${old}`);
}

/**
 * Makes `dir` a run folder: creates it with its marker, or checks that it is one (an empty folder
 * is marked; a run of an older version, with a config hash and checkpoints, is marked when
 * `adopt`). Refuses a folder with other contents. Returns whether the folder was created here.
 */
export async function claimRunDir(dir: string, options: { adopt?: boolean; action?: string } = {}): Promise<{ created: boolean }> {
  const names = await entries(dir);
  if (names !== undefined && names.length > 0 && !names.includes(RUN_MARKER) && !(options.adopt && looksLikeUnmarkedRun(names))) {
    throw notARun(dir, names, options.action ?? 'nothing was written there');
  }
  if (names === undefined) await mkdir(dir, { recursive: true });
  const marker: RunMarker = { format: RUN_MARKER_FORMAT, created: new Date().toISOString(), sessions: [] };
  // 'wx': two processes claiming at once write one marker
  await writeFile(join(dir, RUN_MARKER), `${JSON.stringify(marker, null, 2)}\n`, { flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  return { created: names === undefined };
}

/** Removes a run folder that holds nothing but its marker and lock (one made for a run that then stopped before it began). */
export async function removeIfPristine(dir: string): Promise<void> {
  const names = (await entries(dir).catch(() => undefined)) ?? [];
  if (names.every((n) => n === RUN_MARKER || n === RUN_LOCK)) await rm(dir, { recursive: true, force: true });
}

/**
 * Cuts a run's metrics log back to `step`: the lines of later steps (logged by an interrupted run
 * after its last checkpoint) and a line cut short by a kill go. Returns how many lines went.
 */
export async function cutMetrics(dir: string, step: number): Promise<number> {
  const file = join(dir, METRICS_JSONL);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return 0;
  const lines = text.split('\n').filter((l) => l.trim());
  const kept = lines.filter((line) => {
    try {
      const row = JSON.parse(line) as { step?: unknown };
      return typeof row.step === 'number' && row.step <= step;
    } catch {
      return false;
    }
  });
  if (kept.length === lines.length) return 0;
  const temporary = `${file}.tmp-${process.pid}`;
  await writeFile(temporary, kept.map((l) => `${l}\n`).join(''));
  await rename(temporary, file);
  return lines.length - kept.length;
}

/** Whether a run's metrics log holds the evaluation of `step`. */
export async function loggedEvaluation(dir: string, step: number): Promise<boolean> {
  const text = await readFile(join(dir, METRICS_JSONL), 'utf8').catch(() => '');
  return text.split('\n').some((line) => {
    try {
      const row = JSON.parse(line) as { step?: number; eval?: unknown };
      return row.step === step && row.eval !== undefined;
    } catch {
      return false;
    }
  });
}

/** Reads a run's marker (undefined when the folder carries none). */
export async function readRunMarker(dir: string): Promise<RunMarker | undefined> {
  const text = await readFile(join(dir, RUN_MARKER), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as RunMarker);
}

/** Adds a training session to a run's marker (written through a temporary file and a rename). */
export async function recordRunSession(dir: string, session: RunSession): Promise<void> {
  const marker = (await readRunMarker(dir)) ?? { format: RUN_MARKER_FORMAT, created: session.started, sessions: [] };
  marker.sessions.push(session);
  const temporary = join(dir, `${RUN_MARKER}.tmp-${process.pid}`);
  await writeFile(temporary, `${JSON.stringify(marker, null, 2)}\n`);
  await rename(temporary, join(dir, RUN_MARKER));
}

/**
 * Empties a run folder for --fresh: every entry but the marker and the names in `keep` (its lock)
 * is removed. A folder that carries no marker is refused, and nothing in it is touched.
 */
export async function clearRun(dir: string, keep: string[] = []): Promise<void> {
  const names = await entries(dir);
  if (names === undefined) return;
  if (names.length > 0 && !names.includes(RUN_MARKER)) throw notARun(dir, names, 'nothing was removed');
  await Promise.all(names.filter((n) => n !== RUN_MARKER && !keep.includes(n)).map((n) => rm(join(dir, n), { recursive: true, force: true })));
  // A new run: the marker's record of the sessions of the one removed goes too.
  const marker: RunMarker = { format: RUN_MARKER_FORMAT, created: new Date().toISOString(), sessions: [] };
  await writeFile(join(dir, RUN_MARKER), `${JSON.stringify(marker, null, 2)}\n`);
}

/** Removes a run folder (for --fresh): only one that carries the run marker (or is empty); any other is refused. */
export async function removeRun(dir: string): Promise<void> {
  const names = await entries(dir);
  if (names === undefined) return;
  if (names.length > 0 && !names.includes(RUN_MARKER)) throw notARun(dir, names, 'nothing was removed');
  // Never under a process that is training there.
  if (names.includes(RUN_LOCK)) await checkRunLock(dir, 'removing it');
  await rm(dir, { recursive: true, force: true });
}
