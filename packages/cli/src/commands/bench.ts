import type { BackendName } from '@dropclass/tfjs-wasm-train';
import { type Command, Option } from 'commander';
import { writeFile } from 'node:fs/promises';
import { backendOption, experiments, integer, log } from '../options.js';

interface BenchFlags {
  backend?: BackendName;
  quick?: boolean;
  json?: boolean;
  steps?: number;
  deeplab: boolean;
  torch?: string | false;
  python?: string;
  out?: string;
  profile?: boolean;
  threads?: number;
  config: string;
}

export function benchCommand(program: Command): void {
  program
    .command('bench')
    .description('training-step and inference benchmark: U-Net (and DeepLabV3) with DropClass off and on, beside PyTorch (in the repository)')
    .addOption(backendOption())
    .option('--quick', 'a tiny configuration, to check the benchmark runs')
    .option('--json', 'print JSON instead of a table')
    .option('--steps <n>', 'timed steps (median reported)', integer('--steps'))
    .option('--no-deeplab', 'skip DeepLabV3-ResNet18')
    .option('--torch <script>', 'PyTorch anchor script run side by side (default: the one of the experiments; needs python3 with torch)')
    .option('--no-torch', 'skip the PyTorch anchor')
    .option('--python <path>', 'python interpreter for the anchor (default: DROPCLASS_PYTHON, else /usr/bin/python3)')
    .option('--out <file>', 'also write the JSON report here')
    .option('--profile', 'also print the time of every kernel in a training step')
    .option('--threads <n>', 'threads for the wasm backend (default: DROPCLASS_THREADS, else the machine\'s cores)', integer('--threads'))
    .addOption(new Option('--config <name>', 'a configuration of the experiments\' recipes/bench.json: default (U-Net 4x128x128 and DeepLabV3), main-job (the main job\'s network, batch and crop)').default('default'))
    .action(async (opts: BenchFlags) => {
      const { BUNDLED_TORCH_ANCHOR, DEFAULT_PYTHON, benchPreset, formatBench, runBench } = await experiments('bench');
      const torchScript = opts.torch === false ? undefined : (opts.torch ?? BUNDLED_TORCH_ANCHOR);
      const common = { backend: opts.backend, deeplab: opts.deeplab, torchScript, python: opts.python ?? DEFAULT_PYTHON, profile: opts.profile, threads: opts.threads };
      const { options, sizes } = benchPreset(opts.config, { ...common, quick: opts.quick, steps: opts.steps });
      const report = await runBench(options, log, sizes);
      if (opts.out) await writeFile(opts.out, JSON.stringify(report, null, 2));
      process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : formatBench(report)}\n`);
    });
}
