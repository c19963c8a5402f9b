import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { cloneLayer, rebuildModel } from './stock-model.js';

type SymbolicTensor = tfl.SymbolicTensor;
type LayerConstructor = new (config: tf.serialization.ConfigDict) => tfl.layers.Layer;

/** What folding does with a layer of the model (a layer without a role is copied). */
type Role =
  // a conv whose batch norm takes its place: built when the batch norm is reached
  | { kind: 'folded' }
  // a batch norm that becomes its conv (with the conv's bias and the ReLU after it, when folded)
  | { kind: 'conv'; conv: tfl.layers.Layer; relu?: tfl.layers.Layer }
  // a ReLU folded into the conv before it
  | { kind: 'relu' };

const key = (t: SymbolicTensor) => `${t.id}`;

/** The readers of each tensor of the model: the layers that read it, and 'output' where the model returns it. */
function readers(model: tfl.LayersModel): Map<string, (tfl.layers.Layer | 'output')[]> {
  const by = new Map<string, (tfl.layers.Layer | 'output')[]>();
  const add = (t: SymbolicTensor, reader: tfl.layers.Layer | 'output') => by.set(key(t), [...(by.get(key(t)) ?? []), reader]);
  for (const layer of model.layers) for (const node of layer.inboundNodes) for (const t of node.inputTensors) add(t, layer);
  for (const t of model.outputs) add(t, 'output');
  return by;
}

const config = (layer: tfl.layers.Layer) => layer.getConfig() as Record<string, unknown>;
const output = (layer: tfl.layers.Layer) => layer.inboundNodes[0].outputTensors[0];

/** A stock conv with no activation, channels last, applied once. */
function foldableConv(layer: tfl.layers.Layer): boolean {
  const c = config(layer);
  return (
    layer.getClassName() === 'Conv2D' &&
    layer.inboundNodes.length === 1 &&
    (c.activation === 'linear' || c.activation == null) &&
    (c.dataFormat === 'channelsLast' || c.dataFormat == null)
  );
}

/** A stock batch norm over the last axis, with its offset and scale, applied once. */
function foldableNorm(layer: tfl.layers.Layer): boolean {
  const c = config(layer);
  return layer.getClassName() === 'BatchNormalization' && layer.inboundNodes.length === 1 && (c.axis === -1 || c.axis === 3) && c.center === true && c.scale === true;
}

/** A plain ReLU (no ceiling, no slope), applied once. */
function plainRelu(layer: tfl.layers.Layer): boolean {
  const c = config(layer);
  if (layer.inboundNodes.length !== 1) return false;
  if (layer.getClassName() === 'Activation') return c.activation === 'relu';
  return layer.getClassName() === 'ReLU' && c.maxValue == null;
}

function roles(model: tfl.LayersModel): Map<tfl.layers.Layer, Role> {
  const read = readers(model);
  const plan = new Map<tfl.layers.Layer, Role>();
  for (const conv of model.layers) {
    if (!foldableConv(conv)) continue;
    const next = read.get(key(output(conv))) ?? [];
    const norm = next.length === 1 ? next[0] : 'output';
    if (norm === 'output' || !foldableNorm(norm) || plan.has(norm)) continue;
    const after = read.get(key(output(norm))) ?? [];
    const relu = after.length === 1 && after[0] !== 'output' && plainRelu(after[0]) ? after[0] : undefined;
    plan.set(conv, { kind: 'folded' });
    plan.set(norm, { kind: 'conv', conv, relu });
    if (relu) plan.set(relu, { kind: 'relu' });
  }
  return plan;
}

/**
 * The conv's weights with the batch norm's inference folded in: per output channel c, with
 * s = gamma / sqrt(moving variance + epsilon), kernel[..., c] * s and bias (conv bias - moving mean) * s + beta.
 */
function foldedWeights(conv: tfl.layers.Layer, norm: tfl.layers.Layer): tf.Tensor[] {
  return tf.tidy(() => {
    const [kernel, convBias] = conv.getWeights();
    const [gamma, beta, mean, variance] = norm.getWeights();
    const epsilon = config(norm).epsilon as number;
    const s = tf.div(gamma, tf.sqrt(tf.add(variance, epsilon)));
    const bias = tf.add(tf.mul(convBias ? tf.sub(convBias, mean) : tf.neg(mean), s), beta);
    return [tf.mul(kernel, s), bias];
  });
}

/**
 * A copy of a functional model of stock layers in which each batch norm that directly follows a
 * conv (its only reader) is folded into that conv's kernel and bias, as inference computes it with
 * the moving statistics; a plain ReLU that is the batch norm's only reader becomes the conv's
 * activation. Each such conv, batch norm and ReLU become one conv (named as the conv) that computes
 * the same logits up to float32 rounding, in one pass over the feature map instead of three.
 * Every other layer is copied as it is. For inference only: the copy has no batch statistics to train.
 */
export function foldBatchNorms(model: tfl.LayersModel): tfl.LayersModel {
  const plan = roles(model);
  return rebuildModel(model, (layer, input) => {
    const role = plan.get(layer);
    if (!role) return cloneLayer(layer, layer.inboundNodes[0].inputTensors.map(input));
    // the conv is built where its batch norm is; the ReLU's input is already the folded conv
    if (role.kind === 'folded') return undefined;
    if (role.kind === 'relu') return input(layer.inboundNodes[0].inputTensors[0]);
    const { conv, relu } = role;
    const folded = new (conv.constructor as LayerConstructor)({ ...conv.getConfig(), useBias: true, activation: relu ? 'relu' : 'linear' });
    const out = folded.apply(input(conv.inboundNodes[0].inputTensors[0])) as SymbolicTensor;
    const weights = foldedWeights(conv, layer);
    try {
      folded.setWeights(weights);
    } finally {
      tf.dispose(weights);
    }
    return out;
  });
}
