import { join } from 'node:path';
import { readEvalFile, writeComparison } from '@dropclass/train';
import { type Command, Option } from 'commander';
import { log } from '../options.js';

export function compareCommand(program: Command): void {
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
}
