/**
 * `@dropclass/experiments`: the project's own experiments, each recipe once, as JSON in `recipes/`:
 * the main job (`main-job.json`: regimes and modes) and its results pages, lockstep parity with the
 * PyTorch twin (`parity.json`), the training-step benchmark (`bench.json`) and its kernel profile.
 * Private to the repository: the `dropclass` command line runs them there (`main`, `parity`, `bench`).
 *
 * @packageDocumentation
 */
export { runMainJob, mainJobConfig, mainJobFolders, DEFAULT_MODES, type MainJobOptions } from './main-job.js';
export { runParityJob, type ParityJobOptions } from './parity-job.js';
export { runBenchConfig, type BenchRequest } from './bench-recipe.js';
export { BUNDLED_TORCH_ANCHOR, type BenchReport } from './bench.js';
export type { PointsReport } from './bench-points.js';
export { DEFAULT_PYTHON } from './python.js';
