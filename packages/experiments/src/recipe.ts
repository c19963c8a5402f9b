import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RunConfig, parseRunConfig, deepMerge } from '@dropclass/train';

type Json = Record<string, unknown>;

/** One way of training the runs of a mode: from scratch, or pretrained then fine-tuned. */
export interface Regime {
  description: string;
  /** Each seed's pretraining run (a baseline on its own data), over the base config. */
  pretrain?: { config: Json; quick?: Json };
  /** Over the base config, for every mode's run. */
  train: Json;
  /** Over `train`, with --quick. */
  quick?: Json;
}

/** A named variant of the runs compared (baseline, DropClass, a class-weighted loss, an alpha). */
export interface Mode {
  /** How tables and charts name it. */
  label: string;
  description: string;
  /** Over the regime's config. */
  config: Json;
}

export interface MainRecipe {
  description: string;
  /**
   * The run config every run starts from, without the dataset's root (the job's data folder): in
   * the recipe, the name of its file beside it (`main-job-run.json`, which the example configs of
   * `examples/synthetic-longtail` extend), read in here.
   */
  base: Json;
  /** Over `base`, with --quick: a tiny network on tiny data. */
  quick: Json;
  regimes: Record<string, Regime>;
  modes: Record<string, Mode>;
}

export const MAIN_RECIPE_FILE = fileURLToPath(new URL('../recipes/main-job.json', import.meta.url));

let cached: MainRecipe | undefined;

/** The main job's recipe (`recipes/main-job.json` of this package). */
export function mainRecipe(): MainRecipe {
  if (!cached) {
    const recipe = JSON.parse(readFileSync(MAIN_RECIPE_FILE, 'utf8')) as Omit<MainRecipe, 'base'> & { base: string };
    cached = { ...recipe, base: JSON.parse(readFileSync(join(dirname(MAIN_RECIPE_FILE), recipe.base), 'utf8')) as Json };
  }
  return cached;
}

/** The names of the regimes and modes, checked against the recipe; an error lists the valid ones. */
export function checkRegimeAndModes(regime: string, modes: string[]): void {
  const recipe = mainRecipe();
  if (!recipe.regimes[regime]) throw new Error(`unknown regime ${JSON.stringify(regime)}: the main job's regimes are ${Object.keys(recipe.regimes).join(', ')} (${MAIN_RECIPE_FILE})`);
  const unknown = modes.filter((m) => !recipe.modes[m]);
  if (unknown.length) throw new Error(`unknown mode(s) ${unknown.map((m) => JSON.stringify(m)).join(', ')}: the main job's modes are ${Object.keys(recipe.modes).join(', ')} (${MAIN_RECIPE_FILE})`);
  if (new Set(modes).size !== modes.length || modes.length < 2) throw new Error(`--modes needs at least two different modes, the first the reference the others are compared with; got ${modes.join(',')}`);
}

export interface RecipeOptions {
  quick: boolean;
  /** The data folder of the benchmark; the pretraining set goes to `<data>-pretrain`. */
  data: string;
  /** Steps of every mode's run (default: the regime's). */
  iterations?: number;
  /** Steps of each pretraining run (default: the regime's). */
  pretrainIterations?: number;
}

/** The pretraining set's folder beside the benchmark's. */
export const pretrainData = (data: string) => `${data}-pretrain`;

/** The run config of one mode's run in a regime, for one seed; `init` the pretraining run it starts from (fine-tuning). */
export function modeRunConfig(regimeName: string, modeName: string, seed: number, options: RecipeOptions, init?: string): RunConfig {
  const recipe = mainRecipe();
  const regime = recipe.regimes[regimeName];
  let raw = deepMerge(recipe.base, { dataset: { root: options.data } });
  if (options.quick) raw = deepMerge(raw, recipe.quick);
  raw = deepMerge(raw, regime.train);
  if (options.quick && regime.quick) raw = deepMerge(raw, regime.quick);
  raw = deepMerge(raw, recipe.modes[modeName].config);
  raw = deepMerge(raw, { seed, ...(options.iterations ? { iterations: options.iterations } : {}) });
  if (regime.pretrain) {
    if (!init) throw new Error(`the ${regimeName} regime starts every run from a pretraining run: give its folder`);
    raw = deepMerge(raw, { init: { from: init } });
  }
  return parseRunConfig(raw);
}

/** The run config of a regime's pretraining run for one seed (a baseline on the pretraining set). */
export function pretrainRunConfig(regimeName: string, seed: number, options: RecipeOptions): RunConfig {
  const recipe = mainRecipe();
  const pretrain = recipe.regimes[regimeName].pretrain;
  if (!pretrain) throw new Error(`the ${regimeName} regime has no pretraining`);
  let raw = deepMerge(recipe.base, { dataset: { root: pretrainData(options.data) } });
  if (options.quick) raw = deepMerge(raw, recipe.quick);
  raw = deepMerge(raw, pretrain.config);
  if (options.quick && pretrain.quick) raw = deepMerge(raw, pretrain.quick);
  raw = deepMerge(raw, { seed, ...(options.pretrainIterations ? { iterations: options.pretrainIterations } : {}) });
  return parseRunConfig(raw);
}
