import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { StateDict } from './safetensors.js';

/**
 * The parts of a model that loading and per-part learning rates address: the backbone (every layer
 * before the DropClass head), the head's classifier (`W`, `b`) and its feature-selection layer.
 */
export type ModelPart = 'backbone' | 'classifier' | 'selection';
export const MODEL_PARTS: readonly ModelPart[] = ['backbone', 'classifier', 'selection'];

/** How a tfjs weight is laid out against its PyTorch tensor. */
type Layout = 'conv' | 'matrix' | 'plain';

/**
 * One weight of a model under the name a PyTorch state dict would give it: `<layer name>.<tensor>`,
 * so that a backbone whose layers carry PyTorch module paths as names (`layer1.0.conv1`) reads
 * torchvision's and timm's keys as they are.
 */
export interface NamedWeight {
  /** PyTorch-style key, e.g. `layer1.0.bn1.running_var` or `dropclass_head.classifier.weight`. */
  key: string;
  /** The tfjs weight's name, e.g. `layer1.0.bn1/moving_variance`. */
  name: string;
  part: ModelPart;
  variable: tfl.LayerVariable;
  /** The tfjs shape. */
  shape: number[];
  layout: Layout;
}

/** tfjs weight name -> PyTorch tensor name, for the layers a backbone is built of. */
const TENSOR_NAMES: Record<string, string> = { kernel: 'weight', bias: 'bias', gamma: 'weight', beta: 'bias', moving_mean: 'running_mean', moving_variance: 'running_var' };
/** The DropClass head's weights, named as a PyTorch module with `classifier`, `selection` and `bn` would name them. */
const HEAD_NAMES: Record<string, string> = {
  classifier_kernel: 'classifier.weight',
  classifier_bias: 'classifier.bias',
  selection_kernel: 'selection.weight',
  selection_bias: 'selection.bias',
  selection_gamma: 'bn.weight',
  selection_beta: 'bn.bias',
  selection_moving_mean: 'bn.running_mean',
  selection_moving_variance: 'bn.running_var',
};

/**
 * The weights of a tfjs-layers model under PyTorch-style keys. `partOf` says which part each
 * weight belongs to (every weight is `backbone` without it).
 */
export function namedWeights(weights: readonly tfl.LayerVariable[], partOf: (name: string) => ModelPart = () => 'backbone'): NamedWeight[] {
  return weights.map((variable) => {
    const name = variable.originalName;
    const slash = name.lastIndexOf('/');
    const layer = name.slice(0, slash);
    const tensor = name.slice(slash + 1);
    const shape = variable.shape as number[];
    const head = HEAD_NAMES[tensor];
    const key = head ? `${layer}.${head}` : `${layer}.${TENSOR_NAMES[tensor] ?? tensor}`;
    const layout: Layout = tensor === 'kernel' && shape.length === 4 ? 'conv' : tensor.endsWith('kernel') && shape.length === 2 ? 'matrix' : 'plain';
    return { key, name, part: partOf(name), variable, shape, layout };
  });
}

/** The PyTorch shape of a tfjs weight: conv `[kh,kw,in,out]` -> `[out,in,kh,kw]`, 1x1 matrix `[in,out]` -> `[out,in,1,1]`. */
export function torchShape(w: Pick<NamedWeight, 'shape' | 'layout'>): number[] {
  const s = w.shape;
  if (w.layout === 'conv') return [s[3], s[2], s[0], s[1]];
  if (w.layout === 'matrix') return [s[1], s[0], 1, 1];
  return s;
}

/** A PyTorch tensor's values in the tfjs layout of `w`; a matrix may come as `[out,in]` (nn.Linear) or `[out,in,1,1]` (a 1x1 nn.Conv2d). */
function toTfjsLayout(w: NamedWeight, values: Float32Array): tf.Tensor {
  return tf.tidy(() => {
    const shape = torchShape(w);
    const t = tf.tensor(values, shape);
    if (w.layout === 'conv') return tf.transpose(t, [2, 3, 1, 0]);
    if (w.layout === 'matrix') return tf.transpose(tf.reshape(t, [shape[0], shape[1]]));
    return t;
  });
}

/**
 * How the keys of one kind of weight file (torchvision's ResNet, its DeepLabV3, ...) go onto a
 * model's PyTorch-style keys. Backbone adapters provide one (`BackboneAdapter.torchWeights`).
 */
export interface WeightMap {
  /** What the file holds, for messages, e.g. `torchvision/timm ResNet (encoder only)`. */
  description: string;
  /**
   * The model key a file key goes to; `null` for a tensor left out on purpose (an ImageNet
   * classifier `fc.*`, an auxiliary head, `num_batches_tracked`); `undefined` for a key this kind of
   * file should not have (reported as unexpected).
   */
  translate(fileKey: string): string | null | undefined;
  /** Whether a file of this kind must fill this model key (a ResNet file fills the encoder only). */
  covers(modelKey: string): boolean;
}

/** What loading did, tensor by tensor, for the log and the run folder. */
export interface LoadReport {
  /** The file or run the weights came from. */
  source: string;
  description: string;
  /** Model keys filled, with the source key each came from. */
  loaded: { key: string; from: string; part: ModelPart }[];
  /** Source tensors left out on purpose (see `WeightMap.translate`). */
  ignored: string[];
  /** Source tensors that fit the model but belong to a part not asked for. */
  skipped: { from: string; key: string; part: ModelPart }[];
  /** Model weights that keep their fresh initialisation, and why. */
  initialised: { key: string; part: ModelPart; reason: string }[];
}

/** A weight source that does not fit the model: lists every missing, unexpected and mismatched key. */
export class WeightMismatchError extends Error {
  constructor(
    readonly source: string,
    readonly missing: string[],
    readonly unexpected: string[],
    readonly mismatched: { key: string; from: string; expected: number[]; found: number[] }[],
    readonly hint: string,
  ) {
    const list = (label: string, items: string[]) => (items.length ? `\n  ${label} (${items.length}): ${items.slice(0, 12).join(', ')}${items.length > 12 ? `, ... and ${items.length - 12} more` : ''}` : '');
    const shape = (s: number[]) => `[${s.join(', ')}]`;
    super(
      `${source} does not fit the model:` +
        list('missing (the model expects them, the source lacks them)', missing) +
        list('unexpected (the source has them, the model has no place for them)', unexpected) +
        list(
          'mismatched shapes',
          mismatched.map((m) => `${m.key}${m.from !== m.key ? ` (from ${m.from})` : ''}: model ${shape(m.expected)}, source ${shape(m.found)}`),
        ) +
        `\n${hint}`,
    );
    this.name = 'WeightMismatchError';
  }
}

/** Values for one model weight: from a PyTorch file (its layout) or another model (tfjs's). */
interface Fill {
  from: string;
  values: Float32Array;
  torch: boolean;
}

const same = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Loads a PyTorch state dict into `weights`, strictly, as PyTorch's `load_state_dict(strict=True)`:
 * every model weight the map covers, in the parts asked for, must come from the file with its
 * shape; every file tensor must go somewhere or be ignored by the map. Anything else throws a
 * {@link WeightMismatchError} listing all missing, unexpected and mismatched keys, and nothing is
 * written. Tensors of parts not asked for are reported as skipped; model weights not filled keep
 * their initialisation and are reported as initialised.
 */
export function loadStateDict(weights: NamedWeight[], dict: StateDict, options: { source: string; map: WeightMap; parts: readonly ModelPart[] }): LoadReport {
  const { source, map, parts } = options;
  const byKey = new Map(weights.map((w) => [w.key, w]));
  const report: LoadReport = { source, description: map.description, loaded: [], ignored: [], skipped: [], initialised: [] };
  const unexpected: string[] = [];
  const mismatched: WeightMismatchError['mismatched'] = [];
  const filled = new Map<string, Fill>();
  for (const [fileKey, stored] of dict) {
    const key = map.translate(fileKey);
    if (key === null) {
      report.ignored.push(fileKey);
      continue;
    }
    const target = key === undefined ? undefined : byKey.get(key);
    if (key === undefined || !target) {
      unexpected.push(key && key !== fileKey ? `${fileKey} (as ${key})` : fileKey);
      continue;
    }
    if (!parts.includes(target.part)) {
      report.skipped.push({ from: fileKey, key, part: target.part });
      continue;
    }
    const expected = torchShape(target);
    // nn.Linear stores a matrix as [out, in]; a 1x1 nn.Conv2d as [out, in, 1, 1].
    const fits = same(expected, stored.shape) || (target.layout === 'matrix' && same(expected.slice(0, 2), stored.shape));
    if (!fits) mismatched.push({ key, from: fileKey, expected, found: stored.shape });
    else filled.set(key, { from: fileKey, values: stored.values, torch: true });
  }
  const missing = weights.filter((w) => parts.includes(w.part) && map.covers(w.key) && !filled.has(w.key) && !mismatched.some((m) => m.key === w.key)).map((w) => w.key);
  if (missing.length || unexpected.length || mismatched.length) {
    throw new WeightMismatchError(
      `${source} (${map.description})`,
      missing,
      unexpected,
      mismatched,
      'Check the backbone options against the network the weights were saved from (its layout, widths, extra layers); to start a part afresh (e.g. a classifier for another number of classes), leave it out of the parts to load.',
    );
  }
  assign(weights, filled, report, (w) => (parts.includes(w.part) ? (map.covers(w.key) ? 'not in the source' : `${map.description} does not hold it`) : `part ${w.part} not loaded`));
  return report;
}

/**
 * Copies weights between two models built by the same backbone adapter: `source` and `target`
 * are each model's weights of one part, in the order the model lists them, paired one to one (a
 * backbone's weights need not carry the same layer names in two processes). Throws a
 * {@link WeightMismatchError} when the counts or any shape differ.
 */
export function transferWeights(
  source: { label: string; weights: NamedWeight[] },
  target: NamedWeight[],
  parts: readonly ModelPart[],
): LoadReport {
  const report: LoadReport = { source: source.label, description: 'a saved DropClass model', loaded: [], ignored: [], skipped: [], initialised: [] };
  const filled = new Map<string, Fill>();
  const mismatched: WeightMismatchError['mismatched'] = [];
  const missing: string[] = [];
  const unexpected: string[] = [];
  for (const part of parts) {
    const from = source.weights.filter((w) => w.part === part);
    const to = target.filter((w) => w.part === part);
    for (let i = 0; i < Math.max(from.length, to.length); i++) {
      if (!from[i]) missing.push(to[i].key);
      else if (!to[i]) unexpected.push(from[i].key);
      else if (!same(from[i].shape, to[i].shape)) mismatched.push({ key: to[i].key, from: from[i].key, expected: torchShape(to[i]), found: torchShape(from[i]) });
      else filled.set(to[i].key, { from: from[i].key, values: from[i].variable.read().dataSync() as Float32Array, torch: false });
    }
  }
  for (const w of source.weights.filter((s) => !parts.includes(s.part))) report.skipped.push({ from: w.key, key: w.key, part: w.part });
  if (missing.length || unexpected.length || mismatched.length) {
    throw new WeightMismatchError(
      source.label,
      missing,
      unexpected,
      mismatched,
      'The source was built with other backbone options or another number of classes; load only the parts that match (e.g. parts ["backbone"] for another number of classes), or start from a source of the same network.',
    );
  }
  assign(target, filled, report, (w) => (parts.includes(w.part) ? 'not in the source' : `part ${w.part} not loaded`));
  return report;
}

function assign(weights: NamedWeight[], filled: Map<string, Fill>, report: LoadReport, why: (w: NamedWeight) => string): void {
  for (const w of weights) {
    const value = filled.get(w.key);
    if (!value) {
      report.initialised.push({ key: w.key, part: w.part, reason: why(w) });
      continue;
    }
    const tensor = value.torch ? toTfjsLayout(w, value.values) : tf.tensor(value.values, w.shape);
    w.variable.write(tensor);
    tensor.dispose();
    report.loaded.push({ key: w.key, from: value.from, part: w.part });
  }
}
