import { trainConfigFile } from '@dropclass/train';
import type { BackendName } from '@dropclass/tfjs-wasm-train';
import type { Command } from 'commander';
import { backendOption, log } from '../options.js';

export function trainCommand(program: Command): void {
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
      const { interrupted } = await trainConfigFile(opts.config, { ...opts, log });
      if (interrupted) process.exitCode = 130;
    });
}
