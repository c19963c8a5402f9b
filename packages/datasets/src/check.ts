import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DatasetError } from './errors.js';
import { type DatasetKind, openDataset } from './open.js';
import type { PairedDataset } from './paired.js';

/** What is wrong with a split or one of its samples. */
export interface DataProblem {
  split: string;
  /** The sample's id, for a problem with one sample (which `skipBad` can leave out). */
  id?: string;
  /** The file at fault, when one is. */
  file?: string;
  /** What was found and what was expected. */
  message: string;
  /** What to do about it. */
  fix: string;
}

export interface DataCheckOptions {
  kind: DatasetKind;
  root: string;
  /** Every split a run reads; the first is the one it trains on. */
  splits: string[];
  /** The number of classes the model will have (e.g. a run config's `numClasses`), checked against the dataset's class names. */
  numClasses?: number;
  /** The training split must hold at least one batch of good samples. */
  batchSize?: number;
  /** Leave bad samples out (listed in `skipped`) instead of failing; problems with a whole split still fail. */
  skipBad?: boolean;
  /** Where each sample's verdict is kept, by the path, size and modification time of its files; no cache when absent. */
  cacheFile?: string;
  /** Samples read at once (default 16). */
  concurrency?: number;
  /** How the message tells to leave bad samples out (default: the run config's `dataset.skipBad`). */
  skipHint?: string;
}

export interface DataCheckResult {
  /** Each split, opened; with `skipBad`, without its bad samples. */
  datasets: Record<string, PairedDataset>;
  /** Bad samples left out (with `skipBad`). */
  skipped: DataProblem[];
  /** Samples in all splits, samples decoded now, samples whose verdict came from the cache. */
  samples: number;
  decoded: number;
  cached: number;
  /** Wall time of the check. */
  ms: number;
  /** Why the cache could not be read or written, when it could not. */
  cacheNote?: string;
}

/** Every problem found in the splits a run reads, listed at once. */
export class DataCheckError extends Error {
  constructor(
    readonly root: string,
    readonly problems: DataProblem[],
    skippable: boolean,
    skipHint?: string,
  ) {
    super(formatDataProblems(root, problems, skippable, skipHint));
    this.name = 'DataCheckError';
  }
}

/** The list of problems as one message: every problem, then what to do. */
export function formatDataProblems(root: string, problems: DataProblem[], skippable: boolean, skipHint?: string): string {
  const lines = problems.map((p) => `  ${p.split}: ${p.file ? `${p.file}: ` : ''}${p.message}`);
  const fixes = [...new Set(problems.map((p) => p.fix))];
  const skip = skippable ? [skipHint ?? 'Or leave the bad samples out: set "skipBad": true under "dataset" in the run config (they are listed when the run starts).'] : [];
  return [`${root}: ${problems.length} problem${problems.length === 1 ? '' : 's'} in the data, found before training:`, ...lines, ...fixes, ...skip].join('\n');
}

/** A dataset error's advice, less its library phrasing of skipping (the run config's is given once, below the list). */
const fixOf = (error: DatasetError) => error.fix.replace(/,? or open the dataset with skipBad: true\./, '.');

/** `$DROPCLASS_CACHE_DIR`, else `$XDG_CACHE_HOME/dropclass`, else `~/.cache/dropclass`. */
export function dropclassCacheDir(): string {
  return process.env.DROPCLASS_CACHE_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'dropclass');
}

/** The cache file of the check of one dataset (by kind and absolute root). */
export function defaultCheckCacheFile(kind: DatasetKind, root: string): string {
  const key = createHash('sha256').update(`${kind}\0${resolve(root)}`).digest('hex').slice(0, 16);
  return join(dropclassCacheDir(), 'data-check', `${key}.json`);
}

const CACHE_FORMAT = 'dropclass-data-check/1';

interface CacheFile {
  format: string;
  kind: string;
  root: string;
  classes: number;
  /** `image\0label` -> [image size, image mtime, label size, label mtime, problem?] */
  samples: Record<string, [number, number, number, number, DataProblem?]>;
}

async function readCache(file: string, header: Omit<CacheFile, 'samples'>): Promise<{ samples: CacheFile['samples']; note?: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return { samples: {} };
  }
  try {
    const cache = JSON.parse(text) as CacheFile;
    const same = cache.format === header.format && cache.kind === header.kind && cache.root === header.root && cache.classes === header.classes;
    return { samples: same ? cache.samples : {} };
  } catch {
    return { samples: {}, note: `${file} is not valid JSON: every sample is checked again and the file rewritten` };
  }
}

async function writeCache(file: string, cache: CacheFile): Promise<string | undefined> {
  try {
    await mkdir(dirname(file), { recursive: true });
    const temporary = `${file}.tmp-${process.pid}`;
    await writeFile(temporary, JSON.stringify(cache));
    await rename(temporary, file);
    return undefined;
  } catch (error) {
    return `the check's cache ${file} could not be written (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): the next run checks every sample again`;
  }
}

/** Runs `task` on every item, at most `limit` at once. */
async function eachLimited<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await task(items[next++]);
    }),
  );
}

const fileStamp = async (file: string): Promise<[number, number] | undefined> => {
  const info = await stat(file).catch(() => undefined);
  return info ? [info.size, info.mtimeMs] : undefined;
};

/**
 * Checks every split a run reads before it starts: each split opens (its folders and class names
 * are there) and is not empty, its class names agree with the other splits' and with `numClasses`,
 * every image decodes, every label decodes as class ids of its image's size, and every label value
 * is a class id or 255. All problems are listed at once in a {@link DataCheckError}. With
 * `skipBad`, bad samples are left out of the returned datasets instead (and listed in `skipped`).
 * Verdicts are cached by each file's path, size and modification time, so a second check of
 * unchanged files decodes nothing.
 */
export async function checkDataset(options: DataCheckOptions): Promise<DataCheckResult> {
  const started = performance.now();
  const problems: DataProblem[] = [];
  const datasets: Record<string, PairedDataset> = {};
  const skipped: DataProblem[] = [];
  const root = resolve(options.root);
  let classNames: string[] | undefined;
  let trainClasses: { split: string; names: string[] } | undefined;
  for (const split of [...new Set(options.splits)]) {
    try {
      // Opened skipping unmatched files, so that every one of them is listed, not only the first.
      datasets[split] = await openDataset({ kind: options.kind, root: options.root, split, skipBad: true });
    } catch (error) {
      const e = error as Error;
      problems.push(
        error instanceof DatasetError
          ? { split, file: error.file, message: `${error.found}; expected ${error.expected}`, fix: fixOf(error) }
          : { split, message: e.message, fix: 'Check the dataset root and the split names in the run config.' },
      );
      continue;
    }
    const ds = datasets[split];
    for (const s of ds.skipped) problems.push({ split, id: s.id, message: s.reason, fix: 'Add the missing file or remove the one without a partner.' });
    classNames ??= ds.classNames;
    if (!trainClasses) trainClasses = { split, names: ds.classNames };
    else if (ds.classNames.join('\0') !== trainClasses.names.join('\0')) {
      problems.push({
        split,
        message: `has the classes ${ds.classNames.join(', ')}; expected those of split ${trainClasses.split}: ${trainClasses.names.join(', ')}`,
        fix: 'Every split of a run must have the same classes in the same order.',
      });
    }
  }
  if (options.numClasses !== undefined && classNames && options.numClasses !== classNames.length) {
    problems.push({
      split: options.splits[0],
      message: `numClasses is ${options.numClasses} but the ${options.kind} dataset has ${classNames.length} class names (${classNames.join(', ')})`,
      fix: 'Remove numClasses from the run config (it is taken from the dataset) or correct it.',
    });
  }

  const header = { format: CACHE_FORMAT, kind: options.kind, root, classes: classNames?.length ?? 0 };
  const cache = options.cacheFile ? await readCache(options.cacheFile, header) : { samples: {} as CacheFile['samples'] };
  let cacheNote = cache.note;
  const fresh: CacheFile['samples'] = {};
  let samples = 0;
  let decoded = 0;
  let cached = 0;
  for (const [split, ds] of Object.entries(datasets)) {
    const bad = new Map<string, string>();
    const found: DataProblem[] = [];
    samples += ds.length;
    await eachLimited(
      Array.from({ length: ds.length }, (_, i) => i),
      options.concurrency ?? 16,
      async (i) => {
        const pair = ds.pair(i);
        const key = `${pair.image}\0${pair.label}`;
        const [image, label] = await Promise.all([fileStamp(pair.image), fileStamp(pair.label)]);
        const entry = cache.samples[key];
        let problem: DataProblem | undefined;
        if (image && label && entry && entry[0] === image[0] && entry[1] === image[1] && entry[2] === label[0] && entry[3] === label[1]) {
          cached++;
          problem = entry[4] && { ...entry[4], split };
        } else {
          decoded++;
          const error = await ds.problem(i);
          problem = error && { split, id: pair.id, file: error.file, message: `${error.found}; expected ${error.expected}`, fix: fixOf(error) };
        }
        if (image && label) fresh[key] = [image[0], image[1], label[0], label[1], ...(problem ? [problem] : [])] as CacheFile['samples'][string];
        if (problem) {
          found.push(problem);
          bad.set(pair.id, `${problem.file ? `${problem.file}: ` : ''}${problem.message}`);
        }
      },
    );
    // In the split's order, whatever order the reads finished in.
    const order = new Map(ds.ids.map((id, i) => [id, i]));
    found.sort((a, b) => order.get(a.id!)! - order.get(b.id!)!);
    if (options.skipBad) skipped.push(...ds.skipped.map((s) => ({ split, id: s.id, message: s.reason, fix: '' })), ...found);
    else problems.push(...found);
    // Opened skipping to list every unmatched file; read, a sample that went bad after the check
    // is an error (never silently replaced by another, which would change the run).
    datasets[split] = ds.without(options.skipBad ? bad : new Map(), false);
    const left = datasets[split].length;
    if (left === 0) {
      problems.push({
        split,
        message: ds.length === 0 ? 'holds no samples' : `holds no good sample (all ${ds.length} are bad)`,
        fix: 'Point the run config at a split with samples.',
      });
    } else if (split === options.splits[0] && options.batchSize !== undefined && left < options.batchSize) {
      problems.push({ split, message: `holds ${left} good sample${left === 1 ? '' : 's'}, fewer than one batch of ${options.batchSize}`, fix: 'Lower batchSize or add samples.' });
    }
  }
  if (options.cacheFile && decoded > 0) {
    cacheNote = (await writeCache(options.cacheFile, { ...header, samples: { ...cache.samples, ...fresh } })) ?? cacheNote;
  }
  // Split by split, in the order the run reads them.
  const splitOrder = options.splits.indexOf.bind(options.splits);
  problems.sort((a, b) => splitOrder(a.split) - splitOrder(b.split));
  if (problems.length) throw new DataCheckError(root, problems, !options.skipBad && problems.some((p) => p.id !== undefined), options.skipHint);
  return { datasets, skipped, samples, decoded, cached, ms: performance.now() - started, cacheNote };
}
