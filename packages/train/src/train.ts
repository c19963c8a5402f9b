import { appendFile, mkdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { loadModel } from '@dropclass/core/node';
import { DropClassModel, InferenceOptionsError, NonFiniteLossError, type PixelLossOptions, type StepLosses, checkInferenceOptions, polyLearningRate } from '@dropclass/core';
import { openDataset } from '@dropclass/datasets';
import * as tf from '@tensorflow/tfjs-core';
import { createBackbone } from './backbones.js';
import { Checkpoints } from './checkpoint.js';
import { ConfigError, type RunConfig } from './config.js';
import { type TrainingData, openTrainingData, trainingBatches, trainingFrequencies } from './data.js';
import { evaluateSplits } from './evaluate.js';
import { type InitRecord, initialiseWeights, resolveLoss, writeInitRecord } from './init.js';
import { CONFIG_JSON, METRICS_JSONL } from './paths.js';
import { RUN_LOCK, type RunLock, acquireRunLock } from './run-lock.js';
import { claimRunDir, clearRun, cutMetrics, loggedEvaluation, recordRunSession, removeIfPristine, removeRun, runState, writeRunConfig } from './run-dir.js';
import { computeSession } from './compute.js';
import { killPoint } from './faults.js';
import { Progress } from './progress.js';
import { type EvalFile, writeOverlays, writeRunReport } from './run-report.js';

export interface TrainOptions {
  out: string;
  resume?: boolean;
  /** Remove whatever `out` holds and start again. */
  fresh?: boolean;
  /** Failure injection for tests: the batch of this step is turned into NaN (also `DROPCLASS_INJECT_NAN_AT`). */
  injectNanAt?: number;
  log?: (line: string) => void;
  /** The run config's file, named in errors about it. */
  configFile?: string;
}

export interface TrainResult {
  model: DropClassModel;
  steps: number;
  interrupted: boolean;
}


/**
 * A run config's untrained model: its backbone and the DropClass (or baseline) head, seeded by the
 * config, with the pixel loss `resolveLoss` gives (the plain cross-entropy when undefined).
 */
export function createRunModel(config: RunConfig, data: TrainingData, loss?: PixelLossOptions): DropClassModel {
  return DropClassModel.create(createBackbone(config.backbone, config.seed), {
    numClasses: data.numClasses,
    dropclass: config.dropclass,
    alpha: config.alpha,
    seed: config.seed,
    momentum: config.momentum,
    weightDecay: config.weightDecay,
    ...(loss ? { loss } : {}),
    metadata: { classNames: data.classNames, palette: data.palette, mean: config.mean, std: config.std },
  });
}

/** Thrown when training stops because the loss stopped being finite; the last good checkpoint stays. */
export class TrainingDivergedError extends Error {}

/**
 * Trains a run: dataset -> batch -> backbone -> DropClass head -> losses -> step, with checkpoints,
 * a JSON-lines metrics log, evaluation every `evalEvery` steps, Ctrl-C saving a checkpoint, and
 * `--resume` continuing from the newest checkpoint exactly as an uninterrupted run would.
 *
 * The run folder is marked as a run (`dropclass-run.json`) and locked for the time of the call;
 * a folder with other contents is refused, and so is one that another live process trains in.
 */
export async function train(config: RunConfig, options: TrainOptions): Promise<TrainResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { created } = await claimRunDir(options.out, { adopt: options.resume, action: options.fresh ? 'nothing was removed' : 'nothing was written there' });
  let lock: RunLock;
  try {
    lock = await acquireRunLock(options.out, `dropclass train${options.resume ? ' --resume' : ''}${options.fresh ? ' --fresh' : ''} --out ${options.out}`, log);
  } catch (error) {
    if (created) await removeIfPristine(options.out);
    throw error;
  }
  try {
    if (options.fresh) await clearRun(options.out, [RUN_LOCK]);
    return await trainLocked(config, { ...options, fresh: false, log });
  } catch (error) {
    // A run that stopped before it wrote anything (bad data, a bad window) leaves no folder behind.
    if (created) await removeIfPristine(options.out);
    throw error;
  } finally {
    lock.release();
  }
}

/** Trains in a run folder that this process has claimed and locked. */
async function trainLocked(config: RunConfig, options: TrainOptions): Promise<TrainResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (options.fresh) await removeRun(options.out);
  const checkpoints = new Checkpoints(join(options.out, 'checkpoints'));
  const state = await runState(options.out, config, `pass --fresh to discard it and train again, remove ${options.out}, or choose another --out`);
  const latest = await checkpoints.latest();
  if (options.resume) {
    if (state === 'new') throw new Error(`${options.out}: nothing to resume (no checkpoints/latest.json); start the run without --resume`);
  } else if (state !== 'new') {
    throw new Error(`${options.out} already holds a ${state} run of this config (checkpoint at step ${latest?.step ?? '?'}); pass --resume to continue it, --fresh to start again, or choose another --out`);
  }
  if (state === 'complete' && latest) {
    log(`${options.out} is a finished run of this config (step ${latest.step}); nothing to do`);
    const model = await loadModel(latest.dir);
    return { model, steps: model.step, interrupted: false };
  }

  const data = await openTrainingData(config, log);
  let model: DropClassModel;
  let init: InitRecord | undefined;
  if (latest) {
    model = await loadModel(latest.dir);
  } else {
    model = createRunModel(config, data, await resolveLoss(config, data, log));
    try {
      // Initial weights are loaded once, into the new model; a resumed run has them in its checkpoints.
      if (config.init) init = await initialiseWeights(model, config, log);
    } catch (error) {
      model.dispose();
      throw error instanceof ConfigError ? new ConfigError(`${options.configFile ?? 'run config'}: ${error.message}`) : error;
    }
  }
  if (config.freezeBackboneNorm) model.setBackboneNormFrozen(true);
  try {
    // Checked before the first step, so that a window the backbone cannot take does not end the run at its first evaluation.
    checkInferenceOptions(config.inference, model.info.backbone);
  } catch (error) {
    model.dispose();
    if (error instanceof InferenceOptionsError) {
      const file = options.resume ? join(options.out, CONFIG_JSON) : (options.configFile ?? 'run config');
      throw new ConfigError(`${file}: inference: ${error.message}`);
    }
    throw error;
  }
  await mkdir(options.out, { recursive: true });
  if (state === 'new') {
    // A run killed before its first checkpoint left only a log: it starts again from step 0.
    await rm(join(options.out, METRICS_JSONL), { force: true });
    await writeRunConfig(options.out, config);
    if (init) await writeInitRecord(options.out, init);
  }
  if (latest) {
    log(`resuming ${options.out} from step ${model.step}`);
    // Lines logged after the checkpoint (by the run that was interrupted) are taken again.
    const dropped = await cutMetrics(options.out, model.step);
    if (dropped > 0) log(`${join(options.out, METRICS_JSONL)}: ${dropped} line(s) after step ${model.step} removed; those steps are taken again`);
  }
  // An evaluation due at the checkpoint's step that the interrupted run did not log yet is taken now.
  if (latest && config.evalEvery > 0 && model.step % config.evalEvery === 0 && model.step < config.iterations && !(await loggedEvaluation(options.out, model.step))) {
    const results = await evaluateSplits(model, config, data, log);
    await appendFile(join(options.out, METRICS_JSONL), `${JSON.stringify({ step: model.step, eval: results.summary })}\n`);
  }
  await recordRunSession(options.out, await computeSession(options.out, model.step, log));
  if (model.step >= config.iterations) log(`${options.out} is trained (step ${model.step} of ${config.iterations}); evaluating it`);
  else log(`${config.dropclass ? 'DropClass' : 'baseline'} ${config.backbone.kind}: ${model.countParams().toLocaleString('en')} trainable parameters`);

  const injectNanAt = options.injectNanAt ?? (process.env.DROPCLASS_INJECT_NAN_AT ? Number(process.env.DROPCLASS_INJECT_NAN_AT) : undefined);
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const progress = new Progress('train', config.iterations, 'ce {ce} drop {drop} sup {sup} | {ips} img/s');
  progress.start(model.step, { ce: '-', drop: '-', sup: '-', ips: '-' });
  const started = Date.now();
  const firstStep = model.step;
  try {
    for await (const batch of trainingBatches(data, config, model.step)) {
      // A trained run (one stopped during its final evaluation) takes no step past its schedule.
      if (model.step >= config.iterations) {
        tf.dispose([batch.images, batch.labels]);
        break;
      }
      const step = model.step;
      const learningRate = polyLearningRate(config.learningRate, step, config.iterations, config.polyPower);
      // An injected failure poisons the batch, so the guard is exercised through the real step.
      const images = injectNanAt === step ? tf.mul(batch.images, Number.NaN) : batch.images;
      let losses: StepLosses;
      try {
        losses = model.trainStep(images as tf.Tensor4D, batch.labels, {
          progress: step / config.iterations,
          learningRate,
          ...(config.lrMultipliers ? { learningRateMultipliers: config.lrMultipliers } : {}),
        });
      } finally {
        tf.dispose([images, batch.images, batch.labels]);
      }
      killPoint('step');
      const imagesPerSecond = ((model.step - firstStep) * config.batchSize) / ((Date.now() - started) / 1000);
      await appendFile(
        join(options.out, METRICS_JSONL),
        `${JSON.stringify({ step: model.step, time: new Date().toISOString(), learningRate, ...losses })}\n`,
      );
      killPoint('metrics');
      progress.update(model.step, {
        ce: losses.lossCe.toFixed(3),
        drop: losses.lossDrop.toFixed(3),
        sup: losses.lossSup.toFixed(3),
        ips: imagesPerSecond.toFixed(1),
      });
      const done = model.step >= config.iterations;
      if (done || interrupted || model.step % config.checkpointEvery === 0) await checkpoints.save(model);
      if (config.evalEvery > 0 && model.step % config.evalEvery === 0 && !done) {
        const results = await evaluateSplits(model, config, data, log);
        await appendFile(join(options.out, METRICS_JSONL), `${JSON.stringify({ step: model.step, eval: results.summary })}\n`);
        progress.log(`step ${model.step}: ${Object.entries(results.summary).map(([s, r]) => `${s} mIoU ${(100 * r.mIoU).toFixed(1)}`).join(', ')}`);
      }
      if (done || interrupted) break;
    }
  } catch (error) {
    if (error instanceof NonFiniteLossError) {
      const kept = await checkpoints.latest();
      throw new TrainingDivergedError(
        `${error.message}. The run stopped; ${kept ? `the last good checkpoint is ${kept.dir} (step ${kept.step})` : 'no checkpoint was written yet'}.`,
      );
    }
    throw error;
  } finally {
    progress.stop();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  if (interrupted) {
    log(`interrupted: checkpoint saved at step ${model.step}; continue with --resume`);
    return { model, steps: model.step, interrupted };
  }
  await finishRun(model, config, data, options.out, log);
  return { model, steps: model.step, interrupted };
}

/** Evaluates the finished model on every evaluation split and writes the run's report. */
export async function finishRun(model: DropClassModel, config: RunConfig, data: TrainingData, out: string, log: (line: string) => void): Promise<EvalFile> {
  const evaluation = await evaluateSplits(model, config, data, log);
  killPoint('evaluated');
  // The overlays first: eval.json, written last, marks the run as evaluated.
  for (const split of config.dataset.evalSplits) {
    const ds = data.evalSets?.[split] ?? (await openDataset({ kind: config.dataset.kind, root: config.dataset.root, split }));
    await writeOverlays(model, ds, join(out, 'overlays', split), { count: 4, mean: config.mean, std: config.std, palette: data.palette, inference: config.inference });
  }
  const evalFile: EvalFile = {
    format: 'dropclass-eval/2',
    name: basename(out),
    classNames: data.classNames,
    palette: data.palette,
    frequencies: await trainingFrequencies(data, config),
    rareThreshold: config.rareThreshold,
    step: model.step,
    splits: Object.fromEntries(Object.entries(evaluation.matrices).map(([s, m]) => [s, m.toJSON()])),
    perImage: Object.fromEntries(Object.entries(evaluation.perImage).map(([s, m]) => [s, m.toJSON()])),
  };
  await writeRunReport(out, evalFile, evaluation);
  log(`report: ${join(out, 'report.md')}`);
  return evalFile;
}
