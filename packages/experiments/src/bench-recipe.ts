import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SYNTHETIC_CLASS_NAMES } from '@dropclass/datasets';
import { type BenchOptions, type BenchReport, formatBench, runBench } from './bench.js';
import { type PointsOptions, type PointsRecipe, type PointsReport, formatPointsBench, runPointsBench, writePointsChart } from './bench-points.js';
import { mainJobConfig } from './main-job.js';

/** The benchmark's configurations (`recipes/bench.json`). */
export const BENCH_RECIPE_FILE = fileURLToPath(new URL('../recipes/bench.json', import.meta.url));

type Preset = Partial<BenchOptions>;
interface BenchRecipe {
  configs: Record<string, { description: string; mainJob?: boolean; options?: Preset; points?: PointsRecipe }>;
  quick: {
    options: Preset;
    mainJob: Preset;
    deeplabWidth: number;
    /** Over a points configuration: the backbone's options, tiny crops (`sweepCrops` for one of several crops), one step. */
    points: Omit<PointsRecipe, 'backbone' | 'crops'> & { backboneOptions: Record<string, unknown>; crops: [number, number][]; sweepCrops: [number, number][] };
  };
}

let cached: BenchRecipe | undefined;
/** The recipe, read once. */
const recipe = (): BenchRecipe => (cached ??= JSON.parse(readFileSync(BENCH_RECIPE_FILE, 'utf8')) as BenchRecipe);

/** The names of the benchmark's configurations, with what each times. */
export function benchConfigs(): Record<string, string> {
  return Object.fromEntries(Object.entries(recipe().configs).map(([name, c]) => [name, c.description]));
}

/** The main job's network, batch and crop (from its run config) as bench options; as many classes as its synthetic benchmark. */
function mainJobBenchOptions(): Preset {
  const config = mainJobConfig({ quick: false }, 0, true);
  const unet = config.backbone.options as { base: number; depth: number; featureChannels?: number };
  return { batch: config.batchSize, size: config.crop[0], classes: SYNTHETIC_CLASS_NAMES.length, base: unet.base, depth: unet.depth, featureChannels: unet.featureChannels };
}

/**
 * A named configuration as bench options over `given` (the command line's: backend, anchor,
 * threads...), and the sizes `runBench` takes; `quick` shrinks it to check that the benchmark runs.
 */
export function benchPreset(name: string, given: Partial<BenchOptions> & { quick?: boolean }): { options: BenchOptions; sizes: { config: string; deeplabWidth?: number } } {
  const { configs, quick } = recipe();
  const config = configs[name];
  if (!config) throw new Error(`unknown bench config ${JSON.stringify(name)}: ${Object.keys(configs).join(', ')} (${BENCH_RECIPE_FILE})`);
  if (!config.options) throw new Error(`bench config ${JSON.stringify(name)} is a points configuration: see pointsPreset`);
  const { quick: isQuick, steps, ...common } = given;
  const options = isQuick
    ? { ...common, ...quick.options, ...(config.mainJob ? quick.mainJob : {}) }
    : { ...common, ...(config.mainJob ? mainJobBenchOptions() : {}), ...config.options };
  return { options: { ...options, ...(steps ? { steps } : {}) } as BenchOptions, sizes: { config: name, ...(isQuick ? { deeplabWidth: quick.deeplabWidth } : {}) } };
}

/** Whether a configuration runs points (each in its own process on each side) rather than both modes in one process. */
export function isPointsConfig(name: string): boolean {
  return !!recipe().configs[name]?.points;
}

/**
 * A points configuration (`deeplab-512`, `cityscapes`, `sweep-deeplab`) as the options of
 * `runPointsBench`, over `given` (backend, anchor, threads...): `steps` replaces the timed steps,
 * `layout` the backbone's ResNet layout; `quick` shrinks it to check that the benchmark runs.
 */
export function pointsPreset(
  name: string,
  given: Omit<PointsOptions, 'config' | 'description' | 'recipe'> & { quick?: boolean; steps?: number; layout?: string },
): PointsOptions {
  const { configs, quick } = recipe();
  const config = configs[name];
  if (!config?.points) throw new Error(`bench config ${JSON.stringify(name)} is not a points configuration: ${Object.keys(configs).filter((n) => configs[n].points).join(', ')} (${BENCH_RECIPE_FILE})`);
  const { quick: isQuick, steps, layout, ...common } = given;
  let points: PointsRecipe = config.points;
  if (isQuick) {
    const { backboneOptions, sweepCrops, crops, ...rest } = quick.points;
    points = {
      ...rest,
      backbone: { ...points.backbone, options: { ...points.backbone.options, ...backboneOptions } },
      crops: points.crops.length > 1 ? sweepCrops : crops,
      ...(points.inference ? {} : { inference: undefined }),
    };
  }
  if (layout) points = { ...points, backbone: { ...points.backbone, options: { ...points.backbone.options, layout } } };
  if (steps) points = { ...points, steps };
  return { ...common, config: name, description: config.description, recipe: points };
}

/** What `dropclass bench` is given, over a configuration. */
export interface BenchRequest extends Omit<PointsOptions, 'config' | 'description' | 'recipe'> {
  deeplab: boolean;
  profile?: boolean;
  quick?: boolean;
  steps?: number;
  /** Points configurations: the DeepLabV3 encoder instead of the configuration's. */
  layout?: string;
  /** Points configurations: also draw the chart to this PNG. */
  chart?: string;
}

/**
 * Runs a configuration of `recipes/bench.json`: a points configuration point by point, each in its
 * own processes, any other in this process. Returns the report and its text.
 */
export async function runBenchConfig(name: string, request: BenchRequest, log: (line: string) => void): Promise<{ report: BenchReport | PointsReport; text: string }> {
  const { deeplab, profile, chart, layout, ...given } = request;
  if (isPointsConfig(name)) {
    const report = await runPointsBench(pointsPreset(name, { ...given, layout }), log);
    if (chart) await writePointsChart(report, chart);
    return { report, text: formatPointsBench(report) };
  }
  if (chart || layout) throw new Error(`--chart and --layout go with a points configuration (deeplab-512, cityscapes, sweep-deeplab), not --config ${name}`);
  const { options, sizes } = benchPreset(name, { ...given, deeplab, profile });
  const report = await runBench(options, log, sizes);
  return { report, text: formatBench(report) };
}
