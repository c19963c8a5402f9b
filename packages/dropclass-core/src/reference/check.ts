import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { dropClassObjective } from '../dropclass/objective.js';

export const REFERENCE_FORMAT = 'dropclass-reference/1';
/** Agreement demanded of float32 against the float64 reference: |got - want| <= ABS + REL * |want|. */
export const ABSOLUTE_TOLERANCE = 1e-5;
export const RELATIVE_TOLERANCE = 1e-4;
/**
 * The reference vectors shipped with this package (`reference/` in the package): float64 PyTorch
 * values for a dropped class, nothing dropped, logits coarser than the labels, an all-ignored batch
 * and the end of training.
 */
export const BUNDLED_REFERENCE_DIR = fileURLToPath(new URL('../../reference', import.meta.url));

const INPUT_NAMES = ['A', 'W', 'b', 'Ws', 'bs', 'gamma', 'beta'] as const;
const OUTPUT_NAMES = ['logits', 'logitsDrop', 'importance', 'lossCe', 'lossDrop', 'lossSup', 'total'] as const;

interface ReferenceFile {
  format: string;
  shapes: Record<string, number[]>;
  config: { numClasses: number; droppedClass: number; progress: number; alpha: number; bnEpsilon: number; ignoreIndex: number };
  inputs: Record<string, number[]>;
  outputs: Record<string, number | number[]>;
  gradients: Record<string, number[]>;
}

export interface QuantityCheck {
  /** `outputs.<name>` or `gradients.<name>`. */
  quantity: string;
  maxAbsError: number;
  maxRelError: number;
  ok: boolean;
}

export interface FileCheck {
  file: string;
  checks: QuantityCheck[];
  /** True when at least one quantity was compared and every one agreed. */
  ok: boolean;
  /** Why the file failed although no quantity was off (a file with nothing to compare). */
  problem?: string;
}

/** Compares flat arrays; relative error is taken over entries whose reference is not zero. */
export function compareArrays(quantity: string, got: ArrayLike<number>, want: ArrayLike<number>): QuantityCheck {
  if (got.length !== want.length) {
    return { quantity, maxAbsError: Infinity, maxRelError: Infinity, ok: false };
  }
  let maxAbsError = 0;
  let maxRelError = 0;
  let ok = true;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    maxAbsError = Math.max(maxAbsError, err);
    if (want[i] !== 0) maxRelError = Math.max(maxRelError, err / Math.abs(want[i]));
    if (!(err <= ABSOLUTE_TOLERANCE + RELATIVE_TOLERANCE * Math.abs(want[i]))) ok = false;
  }
  return { quantity, maxAbsError, maxRelError, ok };
}

function parseReference(file: string, text: string): ReferenceFile {
  let data: ReferenceFile;
  try {
    data = JSON.parse(text) as ReferenceFile;
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message}); expected a ${REFERENCE_FORMAT} file`);
  }
  if (data.format !== REFERENCE_FORMAT) {
    throw new Error(`${file}: format is ${JSON.stringify(data.format)}, expected "${REFERENCE_FORMAT}"`);
  }
  for (const name of [...INPUT_NAMES, 'labels']) {
    if (!Array.isArray(data.inputs?.[name]) || !Array.isArray(data.shapes?.[name])) {
      throw new Error(`${file}: inputs.${name} or shapes.${name} is missing; a ${REFERENCE_FORMAT} file carries A, W, b, Ws, bs, gamma, beta and labels`);
    }
  }
  return data;
}

/** Runs the core on one reference file's inputs in float32 and compares every output and gradient. */
export async function checkReferenceFile(file: string): Promise<FileCheck> {
  const ref = parseReference(file, await readFile(file, 'utf8'));
  const { config } = ref;
  const [A, W, b, Ws, bs, gamma, beta] = INPUT_NAMES.map((name) => tf.tensor(ref.inputs[name], ref.shapes[name], 'float32'));
  const labels = tf.tensor3d(ref.inputs.labels, ref.shapes.labels as [number, number, number], 'int32');
  const computed: Record<string, Float32Array | Int32Array | Uint8Array> = {};
  const run = (a: tf.Tensor, w: tf.Tensor, bb: tf.Tensor, ws: tf.Tensor, bbs: tf.Tensor, g: tf.Tensor, be: tf.Tensor) => {
    const terms = dropClassObjective({
      features: a as tf.Tensor4D,
      classifierKernel: w as tf.Tensor2D,
      classifierBias: bb as tf.Tensor1D,
      selection: { kernel: ws as tf.Tensor2D, bias: bbs as tf.Tensor1D, gamma: g as tf.Tensor1D, beta: be as tf.Tensor1D },
      labels,
      droppedClass: config.droppedClass,
      progress: config.progress,
      alpha: config.alpha,
      bnEpsilon: config.bnEpsilon,
      ignoreIndex: config.ignoreIndex,
    });
    for (const name of OUTPUT_NAMES) computed[name] = terms[name].dataSync();
    return terms.total;
  };
  const gradients = tf.tidy(() => tf.grads(run)([A, W, b, Ws, bs, gamma, beta]).map((g) => g.dataSync()));
  tf.dispose([A, W, b, Ws, bs, gamma, beta, labels]);

  const checks: QuantityCheck[] = [];
  for (const name of OUTPUT_NAMES) {
    const want = ref.outputs[name];
    if (want === undefined) continue;
    checks.push(compareArrays(`outputs.${name}`, computed[name], Array.isArray(want) ? want : [want]));
  }
  INPUT_NAMES.forEach((name, i) => {
    const want = ref.gradients?.[name];
    if (want !== undefined) checks.push(compareArrays(`gradients.${name}`, gradients[i], want));
  });
  if (checks.length === 0) {
    const problem = `${file}: nothing to compare; a ${REFERENCE_FORMAT} file carries outputs (${OUTPUT_NAMES.join(', ')}) and gradients (${INPUT_NAMES.join(', ')})`;
    return { file, checks, ok: false, problem };
  }
  return { file, checks, ok: checks.every((c) => c.ok) };
}

/** Every `*.json` file under a directory (recursively), or the file itself. */
export async function findReferenceFiles(path: string): Promise<string[]> {
  const info = await stat(path).catch(() => {
    throw new Error(`${path}: no such file or directory; give a ${REFERENCE_FORMAT} JSON file or a directory of them`);
  });
  if (!info.isDirectory()) return [path];
  const entries = await readdir(path, { withFileTypes: true });
  const nested = await Promise.all(
    entries
      .filter((e) => e.isDirectory() || e.name.endsWith('.json'))
      .sort((x, y) => x.name.localeCompare(y.name))
      .map((e) => (e.isDirectory() ? findReferenceFiles(join(path, e.name)) : Promise.resolve([join(path, e.name)]))),
  );
  return nested.flat();
}
