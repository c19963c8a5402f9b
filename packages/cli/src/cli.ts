import { readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { BACKEND_NAMES, type BackendName, DropClassModel, initBackend } from '@dropclass/core';
import { type DatasetKind, type Rgb, computeClassFrequencies, defaultPalette, openDataset } from '@dropclass/datasets';
import { classReport, formatReport } from '@dropclass/metrics';
import { Command, InvalidArgumentError, Option } from 'commander';
import { BUNDLED_TORCH_ANCHOR, type BenchOptions, formatBench, runBench } from './bench.js';
import { resolveModelDir } from './checkpoint.js';
import { type RunConfig, loadRunConfig, parseRunConfig } from './config.js';
import { diagnoseDependency } from './diagnose.js';
import { evaluateDataset } from './evaluate.js';
import { runMainJob } from './main-job.js';
import { CONFIG_JSON } from './paths.js';
import { predictFiles } from './predict.js';
import { readEvalFile, writeComparison } from './run-report.js';
import { train } from './train.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

const integer = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got ${value}`);
  return n;
};

const backendOption = () => new Option('--backend <name>', 'compute backend (default: tensorflow if installed, else wasm, else cpu; or DROPCLASS_BACKEND)').choices([...BACKEND_NAMES]);

/** What prediction and evaluation need from a saved model: its run config when it has one, else its metadata. */
async function loadModel(path: string): Promise<{ model: DropClassModel; config?: RunConfig; meta: { classNames: string[]; palette: Rgb[]; mean: Rgb; std: Rgb } }> {
  const { modelDir, runDir } = await resolveModelDir(path);
  const model = await DropClassModel.load(modelDir);
  const config = runDir ? parseRunConfig(JSON.parse(await readFile(join(runDir, CONFIG_JSON), 'utf8')), join(runDir, CONFIG_JSON)) : undefined;
  const m = model.info.metadata as Partial<{ classNames: string[]; palette: Rgb[]; mean: Rgb; std: Rgb }>;
  const classNames = m.classNames ?? Array.from({ length: model.numClasses }, (_, i) => `class ${i}`);
  return {
    model,
    config,
    meta: { classNames, palette: m.palette ?? defaultPalette(classNames.length), mean: m.mean ?? config?.mean ?? [0, 0, 0], std: m.std ?? config?.std ?? [1, 1, 1] },
  };
}

export function buildProgram(): Command {
  const program = new Command('dropclass')
    .description('DropClass for TensorFlow.js: train, evaluate, predict, compare a baseline with DropClass, benchmark')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('train')
    .description('train a run from a JSON run config (checkpoints, metrics log, report in the run directory)')
    .requiredOption('--config <file>', 'run config (JSON); see examples/')
    .option('--out <dir>', 'run directory (default: runs/<config name>)')
    .option('--resume', 'continue the run in --out from its newest checkpoint')
    .addOption(backendOption())
    .action(async (opts: { config: string; out?: string; resume?: boolean; backend?: BackendName }) => {
      const config = await loadRunConfig(opts.config);
      await initBackend({ backend: opts.backend });
      const out = opts.out ?? join('runs', basename(opts.config, '.json'));
      const result = await train(config, { out, resume: opts.resume, log });
      result.model.dispose();
      if (result.interrupted) process.exitCode = 130;
    });

  program
    .command('eval')
    .description('evaluate a model on dataset splits and print the per-class report')
    .requiredOption('--model <dir>', 'run directory or saved model directory')
    .addOption(new Option('--kind <kind>', 'dataset kind (default: the run config\'s)').choices(['folder', 'cityscapes', 'voc']))
    .option('--root <dir>', 'dataset root (default: the run config\'s)')
    .option('--split <name...>', 'splits to evaluate (default: the run config\'s evaluation splits)')
    .addOption(new Option('--format <format>', 'report format').choices(['table', 'markdown', 'json']).default('table'))
    .option('--frequencies-split <name>', 'split whose pixel frequencies group the classes (default: the training split)')
    .addOption(backendOption())
    .action(async (opts: { model: string; kind?: DatasetKind; root?: string; split?: string[]; format: string; frequenciesSplit?: string; backend?: BackendName }) => {
      await initBackend({ backend: opts.backend });
      const { model, config, meta } = await loadModel(opts.model);
      const kind = opts.kind ?? config?.dataset.kind;
      const root = opts.root ?? config?.dataset.root;
      if (!kind || !root) throw new Error(`${opts.model} has no run config: give --kind and --root`);
      const splits = opts.split ?? config?.dataset.evalSplits ?? ['val'];
      const frequencies = (await computeClassFrequencies(await openDataset({ kind, root, split: opts.frequenciesSplit ?? config?.dataset.trainSplit ?? splits[0] }))).fraction;
      const format = opts.format === 'table' ? 'terminal' : (opts.format as 'markdown' | 'json');
      for (const split of splits) {
        const ds = await openDataset({ kind, root, split });
        const result = (await evaluateDataset(model, ds, { mean: meta.mean, std: meta.std })).result();
        const report = classReport(result, { classNames: ds.classNames, frequencies, rareThreshold: config?.rareThreshold });
        process.stdout.write(`${format === 'json' ? '' : `${split}:\n`}${formatReport(report, format)}\n\n`);
      }
      model.dispose();
    });

  program
    .command('predict')
    .description('write colour-coded masks and overlays for an image or a folder of images')
    .requiredOption('--model <dir>', 'run directory or saved model directory')
    .requiredOption('--input <path>', 'an image file or a folder of images')
    .requiredOption('--out <dir>', 'output folder')
    .addOption(backendOption())
    .action(async (opts: { model: string; input: string; out: string; backend?: BackendName }) => {
      await initBackend({ backend: opts.backend });
      const { model, meta } = await loadModel(opts.model);
      const files = await predictFiles(model, opts.input, opts.out, meta);
      log(`wrote ${files.length} files to ${opts.out}`);
      model.dispose();
    });

  program
    .command('compare')
    .description('side-by-side report of two evaluated runs: per class, frequent vs under-represented, per split, with charts')
    .argument('<runA>', 'first run directory (e.g. the baseline)')
    .argument('<runB>', 'second run directory (e.g. DropClass)')
    .option('--out <dir>', 'where the report and charts go (default: <runB>/compare)')
    .addOption(new Option('--format <format>', 'what to print').choices(['table', 'markdown']).default('table'))
    .action(async (runA: string, runB: string, opts: { out?: string; format: string }) => {
      const out = opts.out ?? join(runB, 'compare');
      const result = await writeComparison(await readEvalFile(runA), await readEvalFile(runB), out);
      process.stdout.write(`${opts.format === 'markdown' ? result.markdown : result.terminal}\n`);
      log(`report and charts: ${out}`);
    });

  program
    .command('diagnose')
    .description('class-dependency diagnostic: IoU drop of every class when each class\'s features are suppressed')
    .requiredOption('--model <dir>', 'run directory or saved model directory')
    .option('--split <name>', 'split to evaluate', 'val')
    .option('--out <dir>', 'where the matrix and heatmap go (default: the run directory)')
    .addOption(backendOption())
    .action(async (opts: { model: string; split: string; out?: string; backend?: BackendName }) => {
      await initBackend({ backend: opts.backend });
      const { model, config, meta } = await loadModel(opts.model);
      if (!config) throw new Error(`${opts.model} has no run config, so its dataset is unknown; diagnose a run directory`);
      const ds = await openDataset({ kind: config.dataset.kind, root: config.dataset.root, split: opts.split });
      const dep = await diagnoseDependency(model, ds, { mean: meta.mean, std: meta.std, out: opts.out ?? opts.model, title: `Class dependency (${opts.split})` });
      process.stdout.write(`mean off-diagonal IoU drop: ${(100 * dep.meanOffDiagonalDrop).toFixed(2)} points\n`);
      model.dispose();
    });

  program
    .command('bench')
    .description('training-step and inference benchmark: U-Net (and DeepLabV3) with DropClass off and on')
    .addOption(backendOption())
    .option('--quick', 'a tiny configuration, to check the benchmark runs')
    .option('--json', 'print JSON instead of a table')
    .option('--steps <n>', 'timed steps (median reported)', integer('--steps'))
    .option('--no-deeplab', 'skip DeepLabV3-ResNet18')
    .option('--torch <script>', 'PyTorch anchor script run side by side (needs python3 with torch)', BUNDLED_TORCH_ANCHOR)
    .option('--no-torch', 'skip the PyTorch anchor')
    .option('--python <path>', 'python interpreter for the anchor', '/usr/bin/python3')
    .option('--out <file>', 'also write the JSON report here')
    .option('--profile', 'also print the time of every kernel in a training step')
    .option('--threads <n>', 'threads for the wasm backend (default: DROPCLASS_THREADS, else the machine\'s cores)', integer('--threads'))
    .action(async (opts: { backend?: BackendName; quick?: boolean; json?: boolean; steps?: number; deeplab: boolean; torch: string | false; python: string; out?: string; profile?: boolean; threads?: number }) => {
      const common = { backend: opts.backend, deeplab: opts.deeplab, torchScript: opts.torch || undefined, python: opts.python, profile: opts.profile, threads: opts.threads };
      const options: BenchOptions = opts.quick
        ? { ...common, steps: opts.steps ?? 2, warmup: 1, batch: 2, size: 16, classes: 4, base: 4, depth: 2, deeplabSize: 32 }
        : { ...common, steps: opts.steps ?? 10, warmup: 2, batch: 4, size: 128, classes: 8, base: 16, depth: 4, deeplabSize: 256 };
      const report = await runBench(options, log, opts.quick ? { deeplabWidth: 0.125 } : {});
      if (opts.out) await writeFile(opts.out, JSON.stringify(report, null, 2));
      process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : formatBench(report)}\n`);
    });

  program
    .command('main')
    .description('the main job: synthetic benchmark, baseline and DropClass U-Net, evaluation on val and val-shifted, report')
    .option('--quick', 'a few steps on tiny data (for tests)')
    .option('--seeds <n>', 'seeds to run; the report gives mean and spread', integer('--seeds'), 1)
    .option('--iterations <n>', 'training steps per run', integer('--iterations'))
    .option('--out <dir>', 'report directory', 'runs/main')
    .option('--data <dir>', 'where the synthetic benchmark is written', 'data/synthetic')
    .addOption(backendOption())
    .action(async (opts: { quick?: boolean; seeds: number; iterations?: number; out: string; data: string; backend?: BackendName }) => {
      await initBackend({ backend: opts.backend });
      await runMainJob({ out: opts.out, data: opts.data, quick: !!opts.quick, seeds: opts.seeds, iterations: opts.iterations, log });
    });

  return program;
}

/** Runs the command line; returns the exit code. Errors are one readable message, not a stack. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return Number(process.exitCode ?? 0);
  } catch (error) {
    const e = error as { code?: string; exitCode?: number; message: string };
    if (e.code?.startsWith('commander.')) return e.exitCode ?? 1;
    process.stderr.write(`dropclass: ${e.message}\n`);
    return 1;
  }
}
