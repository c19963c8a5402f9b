import type { BackendName } from '@dropclass/tfjs-wasm-train';
import { diagnoseSavedModel } from '@dropclass/train';
import type { Command } from 'commander';
import { backendOption, integer, log } from '../options.js';

export function diagnoseCommand(program: Command): void {
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
      process.stdout.write(`${await diagnoseSavedModel(opts.model, { ...opts, log })}\n`);
    });
}
