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
  chart?: string;
  layout?: string;
}

export function benchCommand(program: Command): void {
  program
    .command('bench')
    .description(
      'training-step and inference benchmark: U-Net (and DeepLabV3) with DropClass off and on, beside PyTorch (in the repository); ' +
        'the points configurations (deeplab-512, cityscapes, sweep-deeplab) run each crop, batch and mode in a fresh process on each side, with peak memory, and time inference',
    )
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
    .option('--threads <n>', 'threads for the wasm backend, and for PyTorch with a points configuration (default: DROPCLASS_THREADS, else the machine\'s cores)', integer('--threads'))
    .addOption(
      new Option(
        '--config <name>',
        "a configuration of the experiments' recipes/bench.json: default (U-Net 4x128x128 and DeepLabV3), main-job (the main job's network, batch and crop), " +
          'deeplab-512 (DeepLabV3-ResNet18 2x and 4x512x512), cityscapes (2x512x1024), sweep-deeplab (crops 64..512)',
      ).default('default'),
    )
    .option('--chart <png>', 'with a points configuration: also draw ms per megapixel and peak memory against pixels, both frameworks, to this PNG')
    .option('--layout <resnet>', 'with a points configuration: the DeepLabV3 encoder (resnet18, resnet34, resnet50) instead of the configuration\'s')
    .action(async (opts: BenchFlags) => {
      const { BUNDLED_TORCH_ANCHOR, DEFAULT_PYTHON, runBenchConfig } = await experiments('bench');
      const { config, json, out, torch, python, ...rest } = opts;
      const torchScript = torch === false ? undefined : (torch ?? BUNDLED_TORCH_ANCHOR);
      const { report, text } = await runBenchConfig(config, { ...rest, torchScript, python: python ?? DEFAULT_PYTHON }, log);
      if (out) await writeFile(out, JSON.stringify(report, null, 2));
      process.stdout.write(`${json ? JSON.stringify(report, null, 2) : text}\n`);
    });
}
