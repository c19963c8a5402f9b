import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseRunConfig } from '@dropclass/train';
import { mainJobConfig } from './main-job.js';
import { DEFAULT_TOLERANCE, formatParity, runParity } from './parity.js';

/** The parity check's recipes (`recipes/parity.json`): per backbone, its steps and the keys over the main job's config. */
export const PARITY_RECIPE_FILE = fileURLToPath(new URL('../recipes/parity.json', import.meta.url));

interface ParityRecipe {
  backbones: Record<string, { description: string; steps: number; config: Record<string, unknown> }>;
}

export interface ParityJobOptions {
  /** A backbone of the recipe: `unet` or `deeplabv3`. */
  backbone: string;
  /** Training steps (default: the recipe's); progress and learning rate run their whole schedule over them. */
  steps?: number;
  /** Which training to compare. */
  mode: 'dropclass' | 'baseline' | 'both';
  out: string;
  data: string;
  python: string;
  /** Print only the summary lines, not every step. */
  summary?: boolean;
  log: (line: string) => void;
  /** Gets each mode's comparison as it finishes. */
  print: (text: string) => void;
}

/** Runs the parity check of one backbone in each mode asked for; returns whether every comparison passed. */
export async function runParityJob(options: ParityJobOptions): Promise<boolean> {
  const recipe = (JSON.parse(readFileSync(PARITY_RECIPE_FILE, 'utf8')) as ParityRecipe).backbones[options.backbone];
  if (!recipe) throw new Error(`no parity recipe for backbone ${JSON.stringify(options.backbone)} in ${PARITY_RECIPE_FILE}`);
  const steps = options.steps ?? recipe.steps;
  const modes = options.mode === 'both' ? [true, false] : [options.mode === 'dropclass'];
  let passed = true;
  for (const dropclass of modes) {
    const config = parseRunConfig({ ...mainJobConfig({ data: options.data, quick: false, iterations: steps }, 0, dropclass), ...recipe.config });
    const result = await runParity({ config, steps, out: join(options.out, `${options.backbone}-${dropclass ? 'dropclass' : 'baseline'}`), python: options.python, log: options.log });
    options.print(formatParity(result, DEFAULT_TOLERANCE, !options.summary));
    passed &&= result.passed;
  }
  return passed;
}
