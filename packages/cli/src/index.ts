export { buildProgram, main } from './cli.js';
export { type RunConfig, ConfigError, loadRunConfig, parseRunConfig, resolveRunConfig, runConfigSchema } from './config.js';
export { BackbonePackageError, importBackbonePackage } from './backbones.js';
export { evaluateDataset, type EvalOptions } from './evaluate.js';
export { train, finishRun, TrainingDivergedError, type TrainOptions, type TrainResult } from './train.js';
export { runMainJob, mainJobConfig, type MainJobOptions } from './main-job.js';
export { runBench, formatBench, type BenchOptions, type BenchReport } from './bench.js';
export { Checkpoints, resolveModelDir } from './checkpoint.js';
