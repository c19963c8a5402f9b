export { buildProgram, main } from './cli.js';
export { type RunConfig, ConfigError, loadRunConfig, parseRunConfig, runConfigSchema } from './config.js';
export { train, finishRun, TrainingDivergedError, type TrainOptions, type TrainResult } from './train.js';
export { runMainJob, mainJobConfig, mainJobFolders, MAIN_JOB_ITERATIONS, MAIN_JOB_FEATURE_CHANNELS, type MainJobOptions } from './main-job.js';
export { writeResultsPage, LEARNED_IOU, type ExperimentRun, type ResultsPage, type SplitResults } from './results-page.js';
export { configHash, runState, RunConfigMismatchError, type RunState } from './run-dir.js';
export { diagnoseDependency, mostImportantChannels, defaultRemovedChannels, type DependencyDiagnostic } from './diagnose.js';
export { runBench, formatBench, type BenchOptions, type BenchReport } from './bench.js';
export { Checkpoints, resolveModelDir } from './checkpoint.js';
