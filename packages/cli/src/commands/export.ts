import type { BackendName } from '@dropclass/tfjs-wasm-train';
import { exportSavedModel } from '@dropclass/train';
import { type Command, Option } from 'commander';
import { backendOption, log } from '../options.js';

export function exportCommand(program: Command): void {
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
      const printed = await exportSavedModel(opts.model, { ...opts, evaluate: opts.eval, log });
      process.stdout.write(`${printed}\n`);
    });
}
