/**
 * `@dropclass/experiments`: the project's own experiments, each recipe once, as JSON in `recipes/`:
 * the main job (`main-job.json`: regimes and modes) and its results pages, lockstep parity with the
 * PyTorch twin (`parity.json`), the training-step benchmark (`bench.json`) and its kernel profile.
 * Private to the repository: the `dropclass` command line runs them there (`main`, `parity`, `bench`).
 *
 * @packageDocumentation
 */
export { runMainJob, mainJobConfig, mainJobFolders, MAIN_JOB_ITERATIONS, MAIN_JOB_FEATURE_CHANNELS, DEFAULT_MODES, type MainJobOptions } from './main-job.js';
export { mainRecipe, modeRunConfig, pretrainRunConfig, MAIN_RECIPE_FILE, type MainRecipe, type Mode, type Regime } from './recipe.js';
export { writeResultsPage, LEARNED_IOU, type ExperimentRun, type PageMode, type PageRegime, type ResultsPage, type SplitResults } from './results-page.js';
export { runParityJob, PARITY_RECIPE_FILE, type ParityJobOptions } from './parity-job.js';
export { runBench, formatBench, BUNDLED_TORCH_ANCHOR, type BenchOptions, type BenchReport } from './bench.js';
export { benchConfigs, benchPreset, isPointsConfig, pointsPreset, BENCH_RECIPE_FILE } from './bench-recipe.js';
export {
  runPointsBench,
  formatPointsBench,
  writePointsChart,
  pointsChartSpec,
  cpuName,
  BENCH_WORKER,
  type PointsOptions,
  type PointsRecipe,
  type PointsReport,
  type TrainPoint,
  type InferencePoint,
} from './bench-points.js';
export { windowCount, type PointSpec, type PointResult, type InferenceImage } from './bench-worker.js';
export { DEFAULT_PYTHON } from './python.js';
