import { spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { SYNTHETIC_STATS_JSON, type SyntheticStats } from '@dropclass/datasets';
import { type DependencyDiagnostic, type EvalFile, type RunConfig, type RunState, claimRunDir, ensureSyntheticData, readEvalFile, removeMarked, removeRun, runState, writeComparison } from '@dropclass/train';
import { type ExperimentRun, type ResultsPage, writeResultsPage } from './results-page.js';
import { checkRegimeAndModes, mainRecipe, modeRunConfig, pretrainData, pretrainRunConfig } from './recipe.js';

export interface MainJobOptions {
  /** Where the runs and the report go. Default runs/main (runs/main-quick with --quick). */
  out?: string;
  /** Where the synthetic benchmark is written (once). Default data/synthetic (data/synthetic-quick with --quick). */
  data?: string;
  /** A few steps on tiny data, in their own folders: for tests and CI. */
  quick: boolean;
  /** Seeds to run; the report pools them (mean, spread, intervals over images and seeds). */
  seeds: number;
  /** Steps of every mode's run (default: the regime's). */
  iterations?: number;
  /** The regime (`recipes/main-job.json`): `scratch` (default) or `finetune`. */
  regime?: string;
  /** The modes compared, the first the reference (default baseline and dropclass). */
  modes?: string[];
  /** Steps of each pretraining run of the fine-tuning regime (default: the regime's). */
  pretrainIterations?: number;
  /**
   * Runs trained at once, each in its own process with floor(cores / jobs) threads. Default: as many
   * as there are runs to train, at most the machine's cores (1 with `quick`). One at a time, a run's
   * process writes to this terminal; several, each to its `train.log`.
   */
  jobs?: number;
  /** Remove the runs of this job in `out` and train them again. */
  fresh?: boolean;
  /** Compute backend passed to the training processes. */
  backend?: string;
  /** Also write the results page here (e.g. docs/results.md), its charts in a folder beside it. */
  results?: string;
  /** The command line, for the results page. */
  command?: string;
  /**
   * The `dropclass` command line each run is trained (and each model diagnosed) with, in a process
   * of its own: the arguments after `node` (its script).
   */
  childCommand: string[];
  /** Bootstrap resamples. Default 1000. */
  resamples?: number;
  log: (line: string) => void;
}


/**
 * Where a comparison's report, charts and per-seed tables go: the output folder itself for the
 * default modes, and a folder of its own under it (`compare-<modes>`) for any other set, so that
 * comparing other modes of the same runs never overwrites an earlier comparison.
 */
export function reportFolder(out: string, modes: string[]): string {
  return modes.join(',') === DEFAULT_MODES.join(',') ? out : join(out, `compare-${modes.join(',')}`);
}

/** The default modes: the reference first. */
export const DEFAULT_MODES = ['baseline', 'dropclass'];

export function mainJobFolders(options: Pick<MainJobOptions, 'quick' | 'out' | 'data' | 'regime'>): { out: string; data: string } {
  const regime = options.regime ?? 'scratch';
  const name = regime === 'scratch' ? 'runs/main' : `runs/main-${regime}`;
  return {
    out: options.out ?? (options.quick ? `${name}-quick` : name),
    data: options.data ?? (options.quick ? 'data/synthetic-quick' : 'data/synthetic'),
  };
}

/** The main job's run config from scratch: a small U-Net with a wide final feature map on the synthetic benchmark. */
export function mainJobConfig(options: Pick<MainJobOptions, 'data' | 'quick' | 'iterations'>, seed: number, dropclass: boolean): RunConfig {
  return modeRunConfig('scratch', dropclass ? 'dropclass' : 'baseline', seed, { quick: options.quick, data: mainJobFolders(options).data, iterations: options.iterations });
}

/** Marks the folder of charts beside a results page (`--results`): only a folder that carries it is replaced. */
export const RESULTS_MARKER = 'dropclass-results-charts.json';

/** The dependency diagnostic looks at the first this many val images (each class's channels removed in turn costs K more head passes). */
export const DEPENDENCY_IMAGES = 1000;

interface PlannedRun {
  seed: number;
  /** A mode of the recipe, or `pretrain` for a pretraining run. */
  mode: string;
  dir: string;
  config: RunConfig;
  state: RunState;
  /** The pretraining run this run starts from. */
  after?: PlannedRun;
}


/**
 * Runs the command line in a child process. With a `logFile`, its output goes there and each of its
 * lines to `onLine` (for progress); without, it writes to this process's terminal (its own
 * progress bar). Rejects with what failed (and the log's tail) on failure.
 */
function child(command: string[], args: string[], env: Record<string, string>, logFile?: string, onLine?: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = logFile ? createWriteStream(logFile, { flags: 'a' }) : undefined;
    const proc = spawn(process.execPath, [...command, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', out ? 'pipe' : 'inherit', out ? 'pipe' : 'inherit'] });
    if (out) {
      proc.stdout!.pipe(out, { end: false });
      proc.stderr!.pipe(out, { end: false });
    }
    if (out && onLine) {
      for (const stream of [proc.stdout!, proc.stderr!]) {
        let rest = '';
        stream.on('data', (chunk: Buffer) => {
          const lines = (rest + chunk.toString('utf8')).split(/\r?\n|\r/);
          rest = lines.pop() ?? '';
          for (const line of lines) if (line.trim()) onLine(line.trim());
        });
      }
    }
    // Ctrl-C reaches the children from the terminal too; SIGTERM (which train also turns into
    // "save a checkpoint and stop") is what the parent adds, so a child never gets a second SIGINT.
    const forward = () => proc.kill('SIGTERM');
    process.once('SIGINT', forward);
    proc.on('close', async (code, signal) => {
      process.removeListener('SIGINT', forward);
      out?.end();
      if (code === 0) return resolve();
      const tail = logFile && existsSync(logFile) ? `; its log is ${logFile}:\n${(await readFile(logFile, 'utf8')).trim().split('\n').slice(-6).join('\n')}` : '';
      reject(new Error(`dropclass ${args.join(' ')} ${signal ? `was stopped by ${signal}` : `exited with ${code}`}${tail}\nrun the same command again to resume`));
    });
  });
}

/**
 * Runs every item with at most `jobs` at a time, an item only once the items it depends on
 * (`after`) have finished; the first failure is thrown once the running ones end, and nothing new
 * starts after it.
 */
async function pool<T extends { after?: T }>(items: T[], jobs: number, task: (item: T) => Promise<void>): Promise<void> {
  const done = new Map<T, Promise<void>>();
  const waiting: (() => void)[] = [];
  let free = Math.max(1, jobs);
  let failed: unknown;
  const slot = () => (free > 0 ? (free--, Promise.resolve()) : new Promise<void>((resolve) => waiting.push(resolve)));
  const release = () => (waiting.length ? waiting.shift()!() : free++);
  for (const item of items) {
    const before = item.after && done.get(item.after);
    done.set(
      item,
      (async () => {
        if (before) await before;
        await slot();
        try {
          if (failed === undefined) await task(item);
        } catch (error) {
          failed ??= error;
          throw error;
        } finally {
          release();
        }
      })(),
    );
  }
  await Promise.allSettled(done.values());
  if (failed !== undefined) throw failed;
}

function describeBackbone(config: RunConfig): string {
  const b = config.backbone;
  if (b.kind !== 'unet') return `${b.kind} (${JSON.stringify(b.options)})`;
  const o = b.options;
  return `U-Net (base ${o.base}, depth ${o.depth}, ${o.featureChannels ? `a final feature map of ${o.featureChannels} channels` : `a final feature map of ${o.base} channels`}), batch ${config.batchSize}, crop ${config.crop.join('x')}`;
}

/**
 * Runs trained at once when `--jobs` is not given. Separate single-threaded processes beat one
 * process's threads at the main job's small tensors, so every run that needs training gets its own
 * process, as far as the cores go; `quick` (tests) trains one run at a time.
 */
export function defaultJobs(runs: number, cores: number, quick: boolean): number {
  return quick ? 1 : Math.max(1, Math.min(runs, cores));
}

/**
 * Progress of runs trained in child processes: every `everyMs`, one line with the newest progress
 * line (`train 340/800 | ... img/s`, `evaluating ...`) of each running child.
 */
export class ChildProgress {
  private readonly latest = new Map<string, string>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly log: (line: string) => void,
    everyMs = 30_000,
  ) {
    this.timer = setInterval(() => this.print(), everyMs);
    this.timer.unref();
  }

  update(label: string, line: string): void {
    if (/^(train \d+\/\d+|evaluat|dependency \d+)/.test(line)) this.latest.set(label, line.replace(/\s*\|\s*ce .*\|/, ' |'));
  }

  /** Runs the command line in a child process (see `child`), its lines feeding this progress under `label`. */
  run(label: string, command: string[], args: string[], env: Record<string, string>, logFile: string): Promise<void> {
    return child(command, args, env, logFile, (line) => this.update(label, line)).finally(() => this.end(label));
  }

  end(label: string): void {
    this.latest.delete(label);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private print(): void {
    if (this.latest.size) this.log([...this.latest].map(([label, line]) => `${label}: ${line}`).join('  ·  '));
  }
}

const minutes = (ms: number) => `${(ms / 60000).toFixed(1)} min`;

/**
 * The main job: writes the synthetic long-tailed, context-biased benchmark if it is not there (and
 * the balanced pretraining set for the fine-tuning regime), trains per seed one run of every mode
 * (same seed, same steps; in the fine-tuning regime each starts from that seed's pretraining run,
 * trained once and shared), evaluates them on val and val-shifted, runs the class-dependency
 * diagnostic, and writes the report with bootstrap intervals. A finished run is reused and a partial
 * one resumed only when its recorded config hash matches; otherwise the job stops and says what
 * differs.
 */
export async function runMainJob(options: MainJobOptions): Promise<ResultsPage> {
  const started = Date.now();
  const { log } = options;
  const regime = options.regime ?? 'scratch';
  const modes = options.modes ?? DEFAULT_MODES;
  checkRegimeAndModes(regime, modes);
  const folders = mainJobFolders({ ...options, regime });
  const recipeOptions = { quick: options.quick, data: folders.data, iterations: options.iterations, pretrainIterations: options.pretrainIterations };
  const seeds = Array.from({ length: options.seeds }, (_, i) => i);
  const hint = (dir: string) => `run the job again with --fresh to train every run in ${folders.out} again, or remove ${dir} (or give another --out)`;
  const plan = async (seed: number, mode: string, config: RunConfig, after?: PlannedRun): Promise<PlannedRun> => {
    const dir = join(folders.out, `seed-${seed}`, mode);
    if (options.fresh) await removeRun(dir);
    return { seed, mode, dir, config, state: await runState(dir, config, hint(dir)), after };
  };
  const pretraining: PlannedRun[] = [];
  const planned: PlannedRun[] = [];
  for (const seed of seeds) {
    const pretrain = mainRecipe().regimes[regime].pretrain ? await plan(seed, 'pretrain', pretrainRunConfig(regime, seed, recipeOptions)) : undefined;
    if (pretrain) pretraining.push(pretrain);
    for (const mode of modes) planned.push(await plan(seed, mode, modeRunConfig(regime, mode, seed, recipeOptions, pretrain && resolve(pretrain.dir)), pretrain));
  }
  await mkdir(folders.out, { recursive: true });
  // The data is written once, here, before any training process reads it.
  await ensureSyntheticData(planned[0].config, log);
  if (pretraining.length) await ensureSyntheticData(pretraining[0].config, log);
  const all = [...pretraining, ...planned];
  const pending = all.filter((r) => r.state !== 'complete');
  const jobs = options.jobs === undefined ? defaultJobs(pending.length, os.availableParallelism(), options.quick) : Math.max(1, options.jobs);
  for (const r of all.filter((p) => p.state === 'complete')) log(`${r.dir} is a finished run of this config; reusing it`);
  const threads = Math.max(1, Math.floor(os.availableParallelism() / jobs));
  const childEnv = { DROPCLASS_THREADS: String(threads) };
  const backendArgs = options.backend ? ['--backend', options.backend] : [];
  const label = (r: PlannedRun) => `seed ${r.seed} ${r.mode}`;
  // every run trains, and every model is diagnosed, in a process of its own
  const command = options.childCommand;
  const trainArgs = async (r: PlannedRun) => {
    const file = join(folders.out, 'configs', `seed-${r.seed}-${r.mode}.json`);
    await writeFile(file, JSON.stringify(r.config, null, 2));
    // marked as a run before its log goes in, so that the child's train finds a run folder
    await claimRunDir(r.dir, { adopt: true });
    return ['train', '--config', file, '--out', r.dir, ...(r.state === 'partial' ? ['--resume'] : []), ...backendArgs];
  };
  await mkdir(join(folders.out, 'configs'), { recursive: true });
  if (jobs === 1) {
    for (const r of pending) {
      log(`\n== seed ${r.seed}: ${r.mode} (${r.config.iterations} steps${r.state === 'partial' ? ', resuming' : ''})`);
      await child(command, await trainArgs(r), childEnv);
    }
  } else {
    log(`training ${pending.length} run(s), ${jobs} at a time, ${threads} thread(s) each; logs in <run>/train.log`);
    const progress = new ChildProgress(log);
    await pool(pending, jobs, async (r) => {
      const t0 = Date.now();
      log(`started seed ${r.seed} ${r.mode}${r.state === 'partial' ? ' (resuming)' : ''}`);
      await progress.run(label(r), command, await trainArgs(r), childEnv, join(r.dir, 'train.log'));
      log(`finished seed ${r.seed} ${r.mode} in ${minutes(Date.now() - t0)}`);
    }).finally(() => progress.stop());
  }

  // The class-dependency diagnostic of every run that has none yet (the same intervention for every model).
  const undiagnosed = planned.filter((r) => !existsSync(join(r.dir, 'dependency.json')));
  const title = (r: PlannedRun) => `Class dependency of the ${mainRecipe().modes[r.mode].label} model, seed ${r.seed} (val)`;
  const diagnoseArgs = (r: PlannedRun) => ['diagnose', '--model', r.dir, '--split', 'val', '--limit', String(DEPENDENCY_IMAGES), '--out', r.dir, '--title', title(r), ...backendArgs];
  if (jobs === 1) {
    for (const r of undiagnosed) await child(command, diagnoseArgs(r), childEnv);
  } else if (undiagnosed.length) {
    log(`class-dependency diagnostic of ${undiagnosed.length} model(s), ${jobs} at a time; logs in <run>/diagnose.log`);
    const progress = new ChildProgress(log);
    await pool(undiagnosed.map((r) => ({ ...r, after: undefined })), jobs, (r) => progress.run(label(r), command, diagnoseArgs(r), childEnv, join(r.dir, 'diagnose.log'))).finally(() => progress.stop());
  }

  const runs: ExperimentRun[] = [];
  for (const r of planned) {
    const evalFile: EvalFile = await readEvalFile(r.dir);
    const dependency = JSON.parse(await readFile(join(r.dir, 'dependency.json'), 'utf8')) as DependencyDiagnostic;
    runs.push({ seed: r.seed, mode: r.mode, dir: r.dir, evalFile, dependency, reused: r.state === 'complete' });
  }
  // Per seed, the plain side-by-side comparison of each mode with the reference (tables and bar charts).
  const reports = reportFolder(folders.out, modes);
  await mkdir(reports, { recursive: true });
  for (const seed of seeds) {
    const of = (mode: string) => runs.find((r) => r.seed === seed && r.mode === mode)!.evalFile;
    for (const mode of modes.slice(1)) await writeComparison(of(modes[0]), of(mode), join(reports, `seed-${seed}`, `vs-${mode}`));
  }
  const statsFile = join(planned[0].config.dataset.root, SYNTHETIC_STATS_JSON);
  const stats = existsSync(statsFile) ? (JSON.parse(await readFile(statsFile, 'utf8')) as SyntheticStats) : undefined;
  const recipe = mainRecipe();
  const pretrainStats = pretraining.length ? join(pretrainData(folders.data), SYNTHETIC_STATS_JSON) : undefined;
  const page = await writeResultsPage({
    runs,
    modes: modes.map((name) => ({ name, ...recipe.modes[name] })),
    regime: {
      name: regime,
      description: recipe.regimes[regime].description,
      ...(pretraining.length
        ? {
            pretraining: {
              iterations: pretraining[0].config.iterations,
              stats: pretrainStats && existsSync(pretrainStats) ? (JSON.parse(await readFile(pretrainStats, 'utf8')) as SyntheticStats) : undefined,
              runs: await Promise.all(pretraining.map(async (r) => ({ seed: r.seed, dir: r.dir, evalFile: await readEvalFile(r.dir) }))),
              parts: planned[0].config.init?.parts ?? [],
            },
          }
        : {}),
    },
    out: reports,
    stats,
    iterations: planned[0].config.iterations,
    backbone: describeBackbone(planned[0].config),
    command: options.command ?? `dropclass main${options.quick ? ' --quick' : ''} --seeds ${options.seeds}`,
    wallMs: Date.now() - started,
    jobs,
    threads,
    resamples: options.resamples ?? 1000,
  });
  log(`\n${page.terminal}`);
  log(`\nreport: ${join(reports, 'report.md')}`);
  if (options.results) {
    const pageDir = dirname(options.results);
    const assets = join(pageDir, basename(options.results, '.md'));
    await removeMarked(assets, RESULTS_MARKER, 'a folder of results charts', `Give --results another name, or move ${assets} away.`);
    await mkdir(assets, { recursive: true });
    await writeFile(join(assets, RESULTS_MARKER), `${JSON.stringify({ format: 'dropclass-results-charts/1', page: basename(options.results) }, null, 2)}\n`);
    const copied = new Map<string, string>();
    for (const chart of page.charts) {
      // Charts of the comparison keep their names; the runs' own (heatmaps, outside a `compare-` folder) are named by their path in the output folder.
      const name = chart.startsWith('..') ? relative(folders.out, join(reports, chart)) : chart;
      const target = join(assets, name.replace(/[\\/]/g, '_'));
      await copyFile(join(reports, chart), target);
      copied.set(chart, target);
    }
    // Charts point at their copies beside the page; other links (per-seed tables) at the run folder.
    const markdown = page.markdown.replace(/\]\(([^)]+)\)/g, (_, link: string) => `](${relative(pageDir, copied.get(link) ?? join(reports, link)).split('\\').join('/')})`);
    await writeFile(options.results, markdown);
    log(`results page: ${options.results} (charts in ${assets})`);
  }
  return page;
}
