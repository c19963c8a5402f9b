import type { InferenceOptions } from '@dropclass/core';
import type { BackendName } from '@dropclass/tfjs-wasm-train';
import { predictWithSavedModel } from '@dropclass/train';
import type { Command } from 'commander';
import { backendOption, inferenceFlags, inferenceOptions, log } from '../options.js';

export function predictCommand(program: Command): void {
  inferenceOptions(program.command('predict'))
    .description('write colour-coded masks and overlays for an image or a folder of images')
    .requiredOption('--model <dir>', 'run directory or saved model directory')
    .requiredOption('--input <path>', 'an image file or a folder of images')
    .requiredOption('--out <dir>', 'output folder')
    .addOption(backendOption())
    .option('--allow-partial', 'predict with the newest checkpoint of a run that has not finished its schedule')
    .option('--skip-bad', 'leave out the images that cannot be read (listed), instead of stopping before the first prediction')
    .action(async (opts: InferenceOptions & { model: string; input: string; out: string; backend?: BackendName; allowPartial?: boolean; skipBad?: boolean }) => {
      await predictWithSavedModel(opts.model, { ...opts, inference: inferenceFlags(opts), log });
    });
}
