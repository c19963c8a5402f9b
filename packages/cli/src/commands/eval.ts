import type { InferenceOptions } from '@dropclass/core';
import type { DatasetKind } from '@dropclass/datasets';
import type { BackendName } from '@dropclass/tfjs-wasm-train';
import { evaluateSavedModel } from '@dropclass/train';
import { type Command, Option } from 'commander';
import { backendOption, inferenceFlags, inferenceOptions, integer, log } from '../options.js';

interface EvalFlags extends InferenceOptions {
  model: string;
  kind?: DatasetKind;
  root?: string;
  split?: string[];
  format: 'table' | 'markdown' | 'json';
  frequenciesSplit?: string;
  backend?: BackendName;
  batchSize?: number;
  allowPartial?: boolean;
  skipBad?: boolean;
}

export function evalCommand(program: Command): void {
  inferenceOptions(program.command('eval'))
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
    .action(async (opts: EvalFlags) => {
      const printed = await evaluateSavedModel(opts.model, {
        ...opts,
        splits: opts.split,
        format: opts.format === 'table' ? 'terminal' : opts.format,
        inference: inferenceFlags(opts),
        log,
      });
      process.stdout.write(`${printed}\n`);
    });
}
