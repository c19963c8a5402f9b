export { buildProgram, main } from './cli.js';
export { type RunConfig, ConfigError, loadRunConfig, parseRunConfig, runConfigSchema } from './config.js';
export { train, finishRun, TrainingDivergedError, type TrainOptions, type TrainResult } from './train.js';
export { runMainJob, mainJobConfig, type MainJobOptions } from './main-job.js';
export { runBench, formatBench, type BenchOptions, type BenchReport } from './bench.js';
export { Checkpoints, resolveModelDir } from './checkpoint.js';
export { exportModel, formatExportReport, loadExport, exportLogits, evaluateExport, type LoadedExport, type ExportReport } from './export.js';
export { predictFiles } from './predict.js';
