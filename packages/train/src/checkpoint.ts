import { existsSync } from 'node:fs';
import { readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DropClassModel } from '@dropclass/core';
import { MODEL_INFO_FILE, readModelInfo, saveModel } from '@dropclass/core/node';
import { killPoint } from './faults.js';

const LATEST = 'latest.json';
const KEEP = 2;

/** Writes a file through a temporary name and a rename, so a reader never sees half of it. */
async function writeFileAtomic(path: string, data: string): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, data);
  await rename(temporary, path);
}

function stepDir(root: string, step: number): string {
  return join(root, `step-${String(step).padStart(7, '0')}`);
}

/**
 * Checkpoints under `<run>/checkpoints/step-NNNNNNN/`, with `latest.json` naming the newest complete one.
 * The pointer is replaced atomically only after the checkpoint is fully written, so a kill during a
 * write leaves the previous checkpoint the one that loads.
 */
export class Checkpoints {
  constructor(readonly root: string) {}

  async save(model: DropClassModel, extra: Record<string, unknown> = {}): Promise<string> {
    const dir = stepDir(this.root, model.step);
    await rm(dir, { recursive: true, force: true });
    await saveModel(model, dir);
    killPoint('checkpoint');
    await writeFileAtomic(join(this.root, LATEST), JSON.stringify({ step: model.step, dir: dir.slice(this.root.length + 1), ...extra }, null, 2));
    await this.prune(model.step);
    killPoint('pruned');
    return dir;
  }

  /** The newest complete checkpoint's directory, or undefined when there is none. */
  async latest(): Promise<{ dir: string; step: number; extra: Record<string, unknown> } | undefined> {
    const pointer = join(this.root, LATEST);
    if (!existsSync(pointer)) return undefined;
    const { step, dir, ...extra } = JSON.parse(await readFile(pointer, 'utf8')) as { step: number; dir: string };
    return { dir: join(this.root, dir), step, extra };
  }

  /** Removes older checkpoints (and any left half-written by a kill), keeping the newest few. */
  private async prune(current: number): Promise<void> {
    const names = (await readdir(this.root)).filter((n) => n.startsWith('step-')).sort();
    const keep = new Set(names.filter((n) => n <= `step-${String(current).padStart(7, '0')}`).slice(-KEEP));
    await Promise.all(names.filter((n) => !keep.has(n)).map((n) => rm(join(this.root, n), { recursive: true, force: true })));
  }
}

/**
 * A model directory from what a user gives: a run directory (its newest checkpoint) or a
 * checkpoint directory itself.
 */
export async function resolveModelDir(path: string): Promise<{ modelDir: string; runDir?: string }> {
  const latest = await new Checkpoints(join(path, 'checkpoints')).latest();
  if (latest) return { modelDir: latest.dir, runDir: path };
  if (existsSync(join(path, MODEL_INFO_FILE))) {
    const runDir = join(path, '..', '..');
    return { modelDir: path, runDir: existsSync(join(runDir, 'config.json')) ? runDir : undefined };
  }
  throw new Error(`${path} is neither a run directory (with checkpoints/latest.json) nor a saved model (with ${MODEL_INFO_FILE})`);
}

/** Where a model's weights come from: its run, its step, and whether the run had finished its schedule. */
export interface ModelSource {
  modelDir: string;
  runDir?: string;
  /** The training step of the weights. */
  step: number;
  /** The steps of the run's schedule (from its config.json), when the model belongs to a run. */
  iterations?: number;
  /** The run stopped before its last step (interrupted, diverged or still training). */
  partial: boolean;
}

/** A command asked for the model of an unfinished run without --allow-partial. */
export class PartialRunError extends Error {}

/** The model of `path` (see {@link resolveModelDir}), with its step and whether its run is finished. */
export async function modelSource(path: string): Promise<ModelSource> {
  const { modelDir, runDir } = await resolveModelDir(path);
  const { step } = await readModelInfo(modelDir);
  let iterations: number | undefined;
  if (runDir && existsSync(join(runDir, 'config.json'))) {
    iterations = (JSON.parse(await readFile(join(runDir, 'config.json'), 'utf8')) as { iterations?: number }).iterations;
  }
  return { modelDir, runDir, step, iterations, partial: iterations !== undefined && step < iterations };
}

/** `step 4 of 8 (unfinished)`, `step 8 of 8`, or `step 8` for a model outside a run. */
export function describeStep(source: ModelSource): string {
  return source.iterations === undefined ? `step ${source.step}` : `step ${source.step} of ${source.iterations}${source.partial ? ' (unfinished run)' : ''}`;
}

/** Refuses the model of an unfinished run unless `allowPartial`, saying how to finish it or how to use it as it is. */
export function refusePartial(path: string, source: ModelSource, command: string, allowPartial: boolean | undefined): void {
  if (!source.partial || allowPartial) return;
  throw new PartialRunError(
    `${path} is an unfinished run: its newest checkpoint (${source.modelDir}) is at step ${source.step} of ${source.iterations}. ` +
      `Finish it (dropclass train --config ${join(source.runDir ?? path, 'config.json')} --out ${source.runDir ?? path} --resume), or pass --allow-partial to ${command} the model of step ${source.step} as it is.`,
  );
}
