import type { BackendName } from '@dropclass/tfjs-wasm-train';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import { type Command, Option } from 'commander';
import { backendOption, experiments, integer, log } from '../options.js';

export function parityCommand(program: Command): void {
  program
    .command('parity')
    .description('lockstep parity with PyTorch: the same network, initial weights, batches and dropped classes, trained here and by a PyTorch twin; per-step losses and final weights compared (in the repository)')
    .addOption(new Option('--backbone <kind>', 'unet: the main job\'s network and recipe; deeplabv3: DeepLabV3-ResNet18 on the same data (the experiments\' recipes/parity.json)').choices(['unet', 'deeplabv3']).default('unet'))
    .option('--steps <n>', 'training steps (default 200 for unet, 5 for deeplabv3); progress and learning rate run their whole schedule over them', integer('--steps'))
    .addOption(new Option('--mode <mode>', 'which training to compare').choices(['dropclass', 'baseline', 'both']).default('both'))
    .option('--out <dir>', 'where batches, weights and results go', 'runs/parity')
    .option('--data <dir>', 'where the synthetic benchmark is (written once)', 'data/synthetic')
    .option('--python <path>', 'python interpreter with torch (default: DROPCLASS_PYTHON, else /usr/bin/python3)')
    .option('--summary', 'print only the summary lines, not every step')
    .addOption(backendOption())
    .action(async (opts: { backbone: string; steps?: number; mode: 'dropclass' | 'baseline' | 'both'; out: string; data: string; python?: string; summary?: boolean; backend?: BackendName }) => {
      const { DEFAULT_PYTHON, runParityJob } = await experiments('parity');
      await initBackend({ backend: opts.backend });
      const print = (text: string) => process.stdout.write(`${text}\n`);
      const passed = await runParityJob({ ...opts, python: opts.python ?? DEFAULT_PYTHON, log, print });
      if (!passed) process.exitCode = 1;
    });
}
