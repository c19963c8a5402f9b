import { fileURLToPath } from 'node:url';
import type { BackendName } from '@dropclass/tfjs-wasm-train';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import type { Command } from 'commander';
import { backendOption, experiments, integer, log, modeList } from '../options.js';

/** The command line a run of the main job trains with in a child process. */
const DROPCLASS = fileURLToPath(new URL('../bin/dropclass.js', import.meta.url));

interface MainFlags {
  quick?: boolean;
  seeds: number;
  regime: string;
  modes?: string[];
  iterations?: number;
  pretrainIterations?: number;
  jobs?: number;
  fresh?: boolean;
  results?: string;
  resamples: number;
  out?: string;
  data?: string;
  backend?: BackendName;
}

export function mainCommand(program: Command, commandLine: () => string[]): void {
  const recipe = 'recipes/main-job.json of the experiments';
  program
    .command('main')
    .description('the main job: synthetic benchmark, a U-Net per seed and mode (baseline and DropClass by default), evaluation on val and val-shifted with bootstrap intervals, dependency diagnostic, report (in the repository)')
    .option('--quick', 'a few steps on tiny data, in their own folders (runs/main-quick, data/synthetic-quick): for tests')
    .option('--seeds <n>', 'seeds to run; the report pools them (mean, spread, intervals over images and seeds)', integer('--seeds'), 1)
    .option('--regime <name>', `how the runs are trained, from ${recipe}: scratch (random weights) or finetune (each seed pretrained on a balanced pretraining set, then fine-tuned)`, 'scratch')
    .option('--modes <list>', `the modes compared, the reference first, from ${recipe} (default baseline,dropclass; e.g. baseline,dropclass,weighted-ce,dropclass+weighted-ce,focal,ohem,dropclass-alpha0)`, modeList)
    .option('--iterations <n>', "training steps per run (default: the regime's; 4 with --quick)", integer('--iterations'))
    .option('--pretrain-iterations <n>', "steps of each pretraining run of the finetune regime (default: the regime's)", integer('--pretrain-iterations'))
    .option('--jobs <n>', 'runs trained at once, each in its own process with floor(cores / jobs) threads (default: one per run, at most the cores; 1 with --quick)', integer('--jobs'))
    .option('--fresh', 'remove the runs of this job in --out and train them again')
    .option('--results <file>', 'also write the results page here (e.g. docs/results.md), with its charts in a folder beside it')
    .option('--resamples <n>', 'bootstrap resamples', integer('--resamples'), 1000)
    .option('--out <dir>', 'report directory (default runs/main, runs/main-<regime> for another regime; -quick appended with --quick)')
    .option('--data <dir>', 'where the synthetic benchmark is written (default data/synthetic, or data/synthetic-quick with --quick)')
    .addOption(backendOption())
    .action(async (opts: MainFlags) => {
      const { DEFAULT_MODES, runMainJob } = await experiments('main');
      await initBackend({ backend: opts.backend });
      await runMainJob({ ...opts, modes: opts.modes ?? DEFAULT_MODES, quick: !!opts.quick, command: ['dropclass', ...commandLine()].join(' '), childCommand: [DROPCLASS], log });
    });
}
