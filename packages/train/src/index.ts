/**
 * `@dropclass/train`: DropClass training as a library, what the `dropclass` command line runs and
 * what a user's own script imports. The data's way through it:
 *
 *   run config (JSON file or object)      loadRunConfig / parseRunConfig -> RunConfig
 *     -> openTrainingData                 the dataset's training split, checked before any work
 *     -> createRunModel                   backbone (by its registered kind) + DropClass head
 *     -> initialiseWeights                init.from: a finished run, a saved model, a .safetensors file
 *     -> train                            steps, checkpoints, metrics log, evaluation and report in
 *                                         the run directory; resumable, never mixing two configs
 *   saved model or run directory
 *     -> evaluateSavedModel               per-class report of dataset splits
 *     -> predictWithSavedModel            colour-coded masks and overlays
 *     -> exportSavedModel                 a stock tfjs Layers model for the browser
 *     -> diagnoseSavedModel               the class-dependency diagnostic
 *   two evaluated runs -> writeComparison side-by-side report with charts
 *
 * @packageDocumentation
 */

// Run configs.
export { type RunConfig, ConfigError, loadRunConfig, parseRunConfig, resolveRunConfig, runConfigSchema } from './config.js';
export { deepMerge } from './config-file.js';
export { printDefaultConfig } from './config-print.js';
export { BackbonePackageError, importBackbonePackage } from './backbones.js';

// Training.
export { ensureSyntheticData, openTrainingData, trainingBatches, type TrainingData } from './data.js';
export { initialiseWeights, resolveLoss, describeInit, type InitRecord } from './init.js';
export { createRunModel, train, finishRun, TrainingDivergedError, type TrainOptions, type TrainResult } from './train.js';
export { trainConfigFile, type TrainFileOptions } from './train-file.js';

// Run directories: checkpoints, state, safe removal.
export { Checkpoints, resolveModelDir } from './checkpoint.js';
export { claimRunDir, configHash, removeMarked, removeRun, runState, RunConfigMismatchError, type RunState } from './run-dir.js';

// Saved models: evaluate, predict, export, diagnose.
export {
  type EvaluateSavedOptions,
  type SavedModel,
  type SavedModelCommon,
  diagnoseSavedModel,
  evaluateSavedModel,
  exportSavedModel,
  loadSavedModel,
  predictWithSavedModel,
} from './saved-model.js';
export { evaluateDataset, type EvalOptions } from './evaluate.js';
export { predictFiles } from './predict.js';
export { exportModel, formatExportReport, loadExport, exportLogits, evaluateExport, type LoadedExport, type ExportReport } from './export.js';
export { diagnoseDependency, mostImportantChannels, defaultRemovedChannels, type DependencyDiagnostic } from './diagnose.js';

// Reports of runs.
export { type EvalFile, readEvalFile, writeComparison } from './run-report.js';
