import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { benchCommand } from './commands/bench.js';
import { compareCommand } from './commands/compare.js';
import { configCommand } from './commands/config.js';
import { diagnoseCommand } from './commands/diagnose.js';
import { evalCommand } from './commands/eval.js';
import { exportCommand } from './commands/export.js';
import { mainCommand } from './commands/main.js';
import { parityCommand } from './commands/parity.js';
import { predictCommand } from './commands/predict.js';
import { trainCommand } from './commands/train.js';

/** The version of @dropclass/cli (its package.json, beside dist/). */
function cliVersion(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** The arguments of this invocation, for the results page. */
let commandLine: string[] = [];

/** The `dropclass` program: one command per file in `commands/`, each a call into `@dropclass/train` or the experiments. */
export function buildProgram(): Command {
  const program = new Command('dropclass')
    .description('DropClass for TensorFlow.js: train, evaluate, predict, export, compare a baseline with DropClass, benchmark')
    .version(cliVersion(), '-V, --version', 'print the version of dropclass')
    .showHelpAfterError()
    .exitOverride();
  configCommand(program);
  trainCommand(program);
  evalCommand(program);
  predictCommand(program);
  exportCommand(program);
  compareCommand(program);
  diagnoseCommand(program);
  benchCommand(program);
  mainCommand(program, () => commandLine);
  parityCommand(program);
  return program;
}

/** Runs the command line; returns the exit code. Errors are one readable message, not a stack. */
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
