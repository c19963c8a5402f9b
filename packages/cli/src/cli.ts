import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { DropClassModel, InferenceOptions } from '@dropclass/core';
import { MODEL_INFO_FILE, loadModel as loadSavedModel, readModelInfo } from '@dropclass/core/node';
import { BACKEND_NAMES, type BackendName, initBackend } from '@dropclass/tfjs-wasm-train';
import { type DatasetKind, type Rgb, SYNTHETIC_CLASS_NAMES, defaultPalette, openDataset } from '@dropclass/datasets';
import { Command, InvalidArgumentError, Option } from 'commander';
import { BUNDLED_TORCH_ANCHOR, type BenchOptions, formatBench, runBench } from './bench.js';
import { describeStep, modelSource, refusePartial, resolveModelDir } from './checkpoint.js';
import { evalCommand } from './eval-command.js';
import { importBackbonePackage } from './backbones.js';
import { ConfigError, type RunConfig, loadRunConfig, parseRunConfig, resolveRunConfig } from './config.js';
import { printDefaultConfig } from './config-print.js';
import { diagnoseDependency } from './diagnose.js';
import { checkExportTarget, exportModel, formatExportReport } from './export.js';
import { DEFAULT_MODES, MAIN_JOB_ITERATIONS, mainJobConfig, runMainJob } from './main-job.js';
import { MAIN_RECIPE_FILE } from './recipe.js';
import { DEFAULT_TOLERANCE, formatParity, runParity } from './parity.js';
import { CONFIG_JSON } from './paths.js';
import { predictFiles } from './predict.js';
import { readEvalFile, writeComparison } from './run-report.js';
import { train } from './train.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

/** The version of @dropclass/cli (its package.json, beside dist/). */
function cliVersion(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

const integer = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got ${value}`);
  return n;
};

/** `512x1024` or `512,1024` -> [512, 1024]. */
const sizePair = (name: string) => (value: string): [number, number] => {
  const parts = value.split(/[x,]/i).map((p) => Number(p.trim()));
  if (parts.length !== 2 || !parts.every((n) => Number.isInteger(n) && n > 0)) {
    throw new InvalidArgumentError(`${name} must be HEIGHTxWIDTH in positive whole pixels (e.g. 512x1024), got ${value}`);
  }
  return parts as [number, number];
};

/** `baseline,dropclass` -> ['baseline', 'dropclass']. */
const modeList = (value: string): string[] => value.split(',').map((m) => m.trim()).filter(Boolean);

const MAIN_RECIPE_NAME = `recipes/${basename(MAIN_RECIPE_FILE)}`;

/** `0.75,1,1.25` -> [0.75, 1, 1.25]. */
const scaleList = (value: string): number[] => {
  const scales = value.split(',').map((p) => Number(p.trim()));
  if (scales.length === 0 || !scales.every((s) => Number.isFinite(s) && s > 0)) {
    throw new InvalidArgumentError(`--scales must be positive numbers separated by commas (e.g. 0.75,1,1.25), got ${value}`);
  }
  return scales;
};

interface InferenceFlags {
  window?: [number, number];
  stride?: [number, number];
  flip?: boolean;
  scales?: number[];
}

const inferenceOptions = (command: Command) =>
  command
    .option('--window <HxW>', 'sliding-window inference with this window (default: the run config\'s, else whole images)', sizePair('--window'))
    .option('--stride <HxW>', 'step between windows (default: half the window)', sizePair('--stride'))
    .option('--flip', 'test-time augmentation: also predict the flipped image and average the logits')
    .option('--scales <list>', 'test-time augmentation: image scales whose logits are averaged, e.g. 0.75,1,1.25', scaleList);

/** The flags over the run config's `inference`; a flag given replaces the config's value (a new window drops the config's stride). */
function inferenceFrom(flags: InferenceFlags, config?: RunConfig): InferenceOptions {
  const base: InferenceOptions = config?.inference ?? {};
  const window = flags.window ?? base.window;
  return {
    window,
    stride: flags.stride ?? (flags.window ? undefined : base.stride),
    flip: flags.flip ?? base.flip,
    scales: flags.scales ?? base.scales,
  };
}

/** The main job's network, batch and crop (from its run config) as bench options; 8 classes, as its synthetic benchmark. */
function mainJobBenchOptions(): Pick<BenchOptions, 'batch' | 'size' | 'classes' | 'base' | 'depth' | 'featureChannels'> {
  const config = mainJobConfig({ quick: false }, 0, true);
  const unet = config.backbone.options as { base: number; depth: number; featureChannels?: number };
  return { batch: config.batchSize, size: config.crop[0], classes: SYNTHETIC_CLASS_NAMES.length, base: unet.base, depth: unet.depth, featureChannels: unet.featureChannels };
}

const backendOption = () => new Option('--backend <name>', 'compute backend (default: tensorflow if installed, else wasm, else cpu; or DROPCLASS_BACKEND)').choices([...BACKEND_NAMES]);

/**
 * Imports the package that registers a saved model's backbone (recorded in its dropclass.json), so
 * that its layers load. Returns what to tell the user when that package cannot be imported.
 */
async function importModelBackbone(modelDir: string, runDir: string | undefined): Promise<string | undefined> {
  const infoFile = join(modelDir, MODEL_INFO_FILE);
  const info = await readModelInfo(modelDir);
  const source = info.backbone.source;
  if (!source?.package) return undefined;
  try {
    await importBackbonePackage(source.package, [process.cwd(), ...(runDir ? [runDir] : []), modelDir], source.kind);
    return undefined;
  } catch (error) {
    return `${infoFile}: this model needs the ${source.kind} backbone from ${source.package}. ${(error as Error).message}`;
  }
}

/** What prediction and evaluation need from a saved model: its run config when it has one, else its metadata. */
async function loadModel(path: string): Promise<{ model: DropClassModel; config?: RunConfig; meta: { classNames: string[]; palette: Rgb[]; mean: Rgb; std: Rgb } }> {
  const { modelDir, runDir } = await resolveModelDir(path);
  const missing = await importModelBackbone(modelDir, runDir);
  let model: DropClassModel;
  try {
    model = await loadSavedModel(modelDir);
  } catch (error) {
    // tfjs's "Unknown layer" (or whatever else failed) comes from the package not being there
    throw missing ? new Error(missing) : error;
  }
  // a backbone of stock tfjs layers loads without its package
  if (missing) log(`warning: ${missing}`);
  let config: RunConfig | undefined;
  try {
    if (runDir) {
      const file = join(runDir, CONFIG_JSON);
      const raw = JSON.parse(await readFile(file, 'utf8'));
      // the model loaded without its backbone package: the run's backbone options cannot be checked, and need not be
      config = missing ? parseRunConfig(raw, file, { checkBackbone: false }) : await resolveRunConfig(raw, file);
    }
  } catch (error) {
    model.dispose();
    throw error;
  }
  const m = model.info.metadata;
  const classNames = m.classNames ?? Array.from({ length: model.numClasses }, (_, i) => `class ${i}`);
  return {
    model,
    config,
    meta: { classNames, palette: m.palette ?? defaultPalette(classNames.length), mean: m.mean ?? config?.mean ?? [0, 0, 0], std: m.std ?? config?.std ?? [1, 1, 1] },
  };
}

export function buildProgram(): Command {
  const program = new Command('dropclass')
    .description('DropClass for TensorFlow.js: train, evaluate, predict, export, compare a baseline with DropClass, benchmark')
    .version(cliVersion(), '-V, --version', 'print the version of dropclass')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('config')
    .description('run configs: print a complete default one, with a comment on every key')
    .option('--print [kind]', 'print the default run config for a backbone kind (default unet), e.g. dropclass config --print deeplabv3 > run.json')
    .option('--package <name>', 'import this package first, for the kind of a backbone plugin')
    .action(async (opts: { print?: string | boolean; package?: string }) => {
      if (!opts.print) throw new Error('say what to do: dropclass config --print [kind] prints a default run config');
      const kind = typeof opts.print === 'string' ? opts.print : 'unet';
      if (opts.package) await importBackbonePackage(opts.package, [process.cwd()], kind);
      process.stdout.write(`${printDefaultConfig(kind)}\n`);
    });

  program
    .command('train')
    .description('train a run from a JSON run config (checkpoints, metrics log, report in the run directory)')
    .requiredOption('--config <file>', 'run config (JSON); see examples/')
    .option('--out <dir>', 'run directory (default: runs/<config name>)')
    .option('--resume', 'continue the run in --out from its newest checkpoint (only a run of the same config)')
    .option('--fresh', 'remove what the run in --out holds and train from the start (only a folder marked as a run)')
    .option('--set <key=value...>', 'override a key of the run config, e.g. --set iterations=2000 backbone.options.base=16 (values are JSON, or text)')
    .option('--init <path>', 'start from these weights (a finished run, a saved model or a .safetensors file): the run config\'s init.from, with its parts (default backbone and classifier)')
    .addOption(backendOption())
    .action(async (opts: { config: string; out?: string; resume?: boolean; fresh?: boolean; set?: string[]; init?: string; backend?: BackendName }) => {
      const config = await loadRunConfig(opts.config, opts.set);
      if (opts.init) {
        if (!existsSync(opts.init)) throw new ConfigError(`--init ${opts.init} does not exist; give a finished run, a saved model or a .safetensors file`);
        config.init = { from: resolve(opts.init), parts: config.init?.parts ?? ['backbone', 'classifier'] };
      }
      await initBackend({ backend: opts.backend });
      const out = opts.out ?? join('runs', basename(opts.config, '.json'));
      const result = await train(config, { out, resume: opts.resume, fresh: opts.fresh, log, configFile: opts.config });
      result.model.dispose();
      if (result.interrupted) process.exitCode = 130;
    });

  inferenceOptions(program
    .command('eval'))
    .description('evaluate a model on dataset splits and print the per-class report')
    .requiredOption('--model <dir>', 'run directory or saved model directory')
    .addOption(new Option('--kind <kind>', 'dataset kind (default: the run config\'s)').choices(['folder', 'cityscapes', 'voc']))
    .option('--root <dir>', 'dataset root (default: the run config\'s)')
    .option('--split <name...>', 'splits to evaluate (default: the run config\'s evaluation splits)')
    .addOption(new Option('--format <format>', 'report format').choices(['table', 'markdown', 'json']).default('table'))
    .option('--frequencies-split <name>', 'split whose pixel frequencies group the classes (default: the training split)')
    .addOption(backendOption())
    .option('--batch-size <n>', 'images of one size predicted together (default: the run config\'s evalBatchSize, else 4)', integer('--batch-size'))
    .option('--allow-partial', 'evaluate the newest checkpoint of a run that has not finished its schedule')
    .option('--skip-bad', 'leave out the samples that cannot be read or have bad labels (listed), instead of stopping')
    .action(async (opts: { model: string; kind?: DatasetKind; root?: string; split?: string[]; format: string; frequenciesSplit?: string; backend?: BackendName; batchSize?: number; allowPartial?: boolean; skipBad?: boolean } & InferenceFlags) => {
      const source = await modelSource(opts.model);
      refusePartial(opts.model, source, 'evaluate', opts.allowPartial);
      await initBackend({ backend: opts.backend });
      const { model, config, meta } = await loadModel(opts.model);
      try {
        const kind = opts.kind ?? config?.dataset.kind;
        const root = opts.root ?? config?.dataset.root;
        if (!kind || !root) throw new Error(`${opts.model} has no run config: give --kind and --root`);
        const splits = opts.split ?? config?.dataset.evalSplits ?? ['val'];
        const modelNames = model.info.metadata.classNames;
        const printed = await evalCommand(model, modelNames, {
          modelPath: opts.model,
          source,
          kind,
          root,
          splits,
          // another dataset than the run's need not have its training split
          frequenciesSplit: opts.frequenciesSplit ?? (opts.root || opts.kind ? splits[0] : (config?.dataset.trainSplit ?? splits[0])),
          format: opts.format === 'table' ? 'terminal' : (opts.format as 'markdown' | 'json'),
          mean: meta.mean,
          std: meta.std,
          batchSize: opts.batchSize ?? config?.evalBatchSize,
          inference: inferenceFrom(opts, config),
          rareThreshold: config?.rareThreshold,
          skipBad: opts.skipBad ?? config?.dataset.skipBad,
          log,
        });
        process.stdout.write(`${printed}\n`);
      } finally {
        model.dispose();
      }
    });

  inferenceOptions(program
    .command('predict'))
    .description('write colour-coded masks and overlays for an image or a folder of images')
    .requiredOption('--model <dir>', 'run directory or saved model directory')
    .requiredOption('--input <path>', 'an image file or a folder of images')
    .requiredOption('--out <dir>', 'output folder')
    .addOption(backendOption())
    .option('--allow-partial', 'predict with the newest checkpoint of a run that has not finished its schedule')
    .option('--skip-bad', 'leave out the images that cannot be read (listed), instead of stopping before the first prediction')
    .action(async (opts: { model: string; input: string; out: string; backend?: BackendName; allowPartial?: boolean; skipBad?: boolean } & InferenceFlags) => {
      const source = await modelSource(opts.model);
      refusePartial(opts.model, source, 'predict with', opts.allowPartial);
      await initBackend({ backend: opts.backend });
      const { model, config, meta } = await loadModel(opts.model);
      try {
        let skipped: { file: string; reason: string }[] = [];
        const onSkipped = (s: typeof skipped) => {
          skipped = s;
          for (const { file, reason } of s) log(`skipped (--skip-bad): ${file}: ${reason}`);
        };
        const files = await predictFiles(model, opts.input, opts.out, { ...meta, inference: inferenceFrom(opts, config), skipBad: opts.skipBad, onSkipped });
        // What the masks came from, beside them.
        const record = { format: 'dropclass-predictions/1', model: { path: opts.model, step: source.step, iterations: source.iterations, partial: source.partial }, input: opts.input, written: files, skipped };
        await writeFile(join(opts.out, 'predictions.json'), `${JSON.stringify(record, null, 2)}\n`);
        log(`wrote ${files.length} files to ${opts.out} (model ${opts.model}, ${describeStep(source)})`);
      } finally {
        model.dispose();
      }
    });

  program
    .command('export')
    .description('write a deployable tfjs Layers model of stock layers (model.json + weights) for @tensorflow/tfjs, e.g. in a browser')
    .requiredOption('--model <dir>', 'run directory or saved model directory')
    .option('--out <dir>', 'export directory (default: <model>/export)')
    .addOption(new Option('--quantize <dtype>', 'store the weights as float16 (half the size)').choices(['float16']))
    .option('--split <name>', 'split to measure the mIoU on (default: val, when the run config names a dataset)')
    .option('--no-eval', 'do not measure the mIoU')
    .option('--allow-partial', 'export the newest checkpoint of a run that has not finished its schedule')
    .addOption(backendOption())
    .action(async (opts: { model: string; out?: string; quantize?: 'float16'; split?: string; eval: boolean; backend?: BackendName; allowPartial?: boolean }) => {
      const source = await modelSource(opts.model);
      refusePartial(opts.model, source, 'export', opts.allowPartial);
      await initBackend({ backend: opts.backend });
      const out = opts.out ?? join(opts.model, 'export');
      await checkExportTarget(out);
      const { model, config } = await loadModel(opts.model);
      const scratch = await mkdtemp(join(tmpdir(), 'dropclass-export-'));
      try {
        let evaluation;
        if (opts.eval && config) {
          const split = opts.split ?? 'val';
          evaluation = { split, dataset: await openDataset({ kind: config.dataset.kind, root: config.dataset.root, split }) };
        } else if (opts.eval) {
          log(`${opts.model} has no run config, so its dataset is unknown: the mIoU is not measured (export a run directory to measure it)`);
        }
        const report = await exportModel(model, { out, quantize: opts.quantize ?? 'none', evaluation, scratch });
        process.stdout.write(`${formatExportReport(report)}\nexported from ${opts.model}, ${describeStep(source)}\n`);
      } finally {
        await rm(scratch, { recursive: true, force: true });
        model.dispose();
      }
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
    .description('class-dependency diagnostic: IoU drop of every class when the feature channels most important to each class (by the classifier\'s weights) are zeroed; the same intervention for a baseline and a DropClass model')
    .requiredOption('--model <dir>', 'run directory or saved model directory')
    .option('--split <name>', 'split to evaluate', 'val')
    .option('--channels <n>', 'channels removed per class (default: feature channels / classes)', integer('--channels'))
    .option('--limit <n>', 'only the first n images of the split', integer('--limit'))
    .option('--title <text>', 'title of the heatmap and the Markdown')
    .option('--out <dir>', 'where the matrix and heatmap go (default: the run directory)')
    .addOption(backendOption())
    .action(async (opts: { model: string; split: string; channels?: number; limit?: number; title?: string; out?: string; backend?: BackendName }) => {
      await initBackend({ backend: opts.backend });
      const { model, config, meta } = await loadModel(opts.model);
      if (!config) throw new Error(`${opts.model} has no run config, so its dataset is unknown; diagnose a run directory`);
      const ds = await openDataset({ kind: config.dataset.kind, root: config.dataset.root, split: opts.split });
      const dep = await diagnoseDependency(model, ds, { mean: meta.mean, std: meta.std, out: opts.out ?? opts.model, channels: opts.channels, limit: opts.limit, title: opts.title ?? `Class dependency (${opts.split})` });
      process.stdout.write(`${dep.intervention}\nmean off-diagonal IoU drop: ${(100 * dep.meanOffDiagonalDrop).toFixed(2)} points\n`);
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
    .addOption(new Option('--config <name>', 'default: U-Net 4x128x128 (and DeepLabV3); main-job: the main job\'s network, batch and crop (no DeepLabV3)').choices(['default', 'main-job']).default('default'))
    .action(async (opts: { backend?: BackendName; quick?: boolean; json?: boolean; steps?: number; deeplab: boolean; torch: string | false; python: string; out?: string; profile?: boolean; threads?: number; config: 'default' | 'main-job' }) => {
      const common = { backend: opts.backend, deeplab: opts.deeplab, torchScript: opts.torch || undefined, python: opts.python, profile: opts.profile, threads: opts.threads };
      const mainJob = opts.config === 'main-job';
      const options: BenchOptions = opts.quick
        ? { ...common, steps: opts.steps ?? 2, warmup: 1, batch: 2, size: 16, classes: 4, base: 4, depth: 2, deeplabSize: 32, ...(mainJob ? { featureChannels: 16, deeplab: false } : {}) }
        : mainJob
          ? { ...common, ...mainJobBenchOptions(), deeplab: false, steps: opts.steps ?? 10, warmup: 2, deeplabSize: 256 }
          : { ...common, steps: opts.steps ?? 10, warmup: 2, batch: 4, size: 128, classes: 8, base: 16, depth: 4, deeplabSize: 256 };
      const report = await runBench(options, log, { config: opts.config, ...(opts.quick ? { deeplabWidth: 0.125 } : {}) });
      if (opts.out) await writeFile(opts.out, JSON.stringify(report, null, 2));
      process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : formatBench(report)}\n`);
    });

  program
    .command('main')
    .description('the main job: synthetic benchmark, a U-Net per seed and mode (baseline and DropClass by default), evaluation on val and val-shifted with bootstrap intervals, dependency diagnostic, report')
    .option('--quick', 'a few steps on tiny data, in their own folders (runs/main-quick, data/synthetic-quick): for tests')
    .option('--seeds <n>', 'seeds to run; the report pools them (mean, spread, intervals over images and seeds)', integer('--seeds'), 1)
    .option('--regime <name>', `how the runs are trained, from ${MAIN_RECIPE_NAME}: scratch (random weights) or finetune (each seed pretrained on a balanced pretraining set, then fine-tuned)`, 'scratch')
    .option('--modes <list>', `the modes compared, the reference first, from ${MAIN_RECIPE_NAME} (e.g. baseline,dropclass,weighted-ce,dropclass+weighted-ce,focal,ohem,dropclass-alpha0)`, modeList, DEFAULT_MODES)
    .option('--iterations <n>', `training steps per run (default: the regime's, ${MAIN_JOB_ITERATIONS} from scratch; 4 with --quick)`, integer('--iterations'))
    .option('--pretrain-iterations <n>', "steps of each pretraining run of the finetune regime (default: the regime's)", integer('--pretrain-iterations'))
    .option('--jobs <n>', 'runs trained at once, each in its own process with floor(cores / jobs) threads (default: one per run, at most the cores; 1 with --quick)', integer('--jobs'))
    .option('--fresh', 'remove the runs of this job in --out and train them again')
    .option('--results <file>', 'also write the results page here (e.g. docs/results.md), with its charts in a folder beside it')
    .option('--resamples <n>', 'bootstrap resamples', integer('--resamples'), 1000)
    .option('--out <dir>', 'report directory (default runs/main, runs/main-<regime> for another regime; -quick appended with --quick)')
    .option('--data <dir>', 'where the synthetic benchmark is written (default data/synthetic, or data/synthetic-quick with --quick)')
    .addOption(backendOption())
    .action(
      async (opts: { quick?: boolean; seeds: number; regime: string; modes: string[]; iterations?: number; pretrainIterations?: number; jobs?: number; fresh?: boolean; results?: string; resamples: number; out?: string; data?: string; backend?: BackendName }) => {
        await initBackend({ backend: opts.backend });
        await runMainJob({ ...opts, quick: !!opts.quick, command: ['dropclass', ...commandLine].join(' '), log });
      },
    );

  program
    .command('parity')
    .description('lockstep parity with PyTorch: the same network, initial weights, batches and dropped classes, trained here and by a PyTorch twin; per-step losses and final weights compared')
    .addOption(new Option('--backbone <kind>', 'unet: the main job\'s network and recipe; deeplabv3: DeepLabV3-ResNet18 on the same data').choices(['unet', 'deeplabv3']).default('unet'))
    .option('--steps <n>', 'training steps (default 200 for unet, 5 for deeplabv3); progress and learning rate run their whole schedule over them', integer('--steps'))
    .addOption(new Option('--mode <mode>', 'which training to compare').choices(['dropclass', 'baseline', 'both']).default('both'))
    .option('--out <dir>', 'where batches, weights and results go', 'runs/parity')
    .option('--data <dir>', 'where the synthetic benchmark is (written once)', 'data/synthetic')
    .option('--python <path>', 'python interpreter with torch', '/usr/bin/python3')
    .option('--summary', 'print only the summary lines, not every step')
    .addOption(backendOption())
    .action(async (opts: { backbone: 'unet' | 'deeplabv3'; steps?: number; mode: string; out: string; data: string; python: string; summary?: boolean; backend?: BackendName }) => {
      await initBackend({ backend: opts.backend });
      const steps = opts.steps ?? (opts.backbone === 'unet' ? 200 : 5);
      const modes = opts.mode === 'both' ? [true, false] : [opts.mode === 'dropclass'];
      let passed = true;
      for (const dropclass of modes) {
        const recipe = mainJobConfig({ data: opts.data, quick: false, iterations: steps }, 0, dropclass);
        const config =
          opts.backbone === 'unet'
            ? recipe
            : parseRunConfig({ ...recipe, backbone: { kind: 'deeplabv3', options: { layout: 'resnet18' } }, batchSize: 4, dataset: { ...recipe.dataset } });
        const result = await runParity({ config, steps, out: join(opts.out, `${opts.backbone}-${dropclass ? 'dropclass' : 'baseline'}`), python: opts.python, log });
        process.stdout.write(`${formatParity(result, DEFAULT_TOLERANCE, !opts.summary)}\n`);
        passed &&= result.passed;
      }
      if (!passed) process.exitCode = 1;
    });

  return program;
}

/** Runs the command line; returns the exit code. Errors are one readable message, not a stack. */
/** The arguments of this invocation, for the results page. */
let commandLine: string[] = [];

export async function main(argv: string[]): Promise<number> {
  commandLine = argv;
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
