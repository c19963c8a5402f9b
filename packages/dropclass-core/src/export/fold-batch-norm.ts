import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

type SymbolicTensor = tfl.SymbolicTensor;
type LayerConstructor = new (config: tf.serialization.ConfigDict) => tfl.layers.Layer;

/** What folding does with a layer of the model. */
type Role =
  | { kind: 'copy' }
  // a conv whose batch norm takes its place: built when the batch norm is reached
  | { kind: 'folded' }
  // a batch norm that becomes its conv (with the conv's bias and the ReLU after it, when folded)
  | { kind: 'conv'; conv: tfl.layers.Layer; relu?: tfl.layers.Layer }
  // a ReLU folded into the conv before it
  | { kind: 'relu' };

const key = (t: SymbolicTensor) => `${t.id}`;

/** How many layers read each tensor of the model (the model's outputs count as readers). */
function readers(model: tfl.LayersModel): Map<string, tfl.layers.Layer[]> {
  const by = new Map<string, tfl.layers.Layer[]>();
  for (const layer of model.layers) {
    for (const node of layer.inboundNodes) {
      for (const t of node.inputTensors) by.set(key(t), [...(by.get(key(t)) ?? []), layer]);
    }
  }
  for (const t of model.outputs) by.set(key(t), [...(by.get(key(t)) ?? []), model as unknown as tfl.layers.Layer]);
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
    if (next.length !== 1 || !foldableNorm(next[0]) || plan.has(next[0])) continue;
    const norm = next[0];
    const after = read.get(key(output(norm))) ?? [];
    const relu = after.length === 1 && plainRelu(after[0]) ? after[0] : undefined;
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
  const mapped = new Map<string, SymbolicTensor>();
  const inputs = model.inputs.map((x, i) => {
    const input = tfl.input({ shape: x.shape.slice(1), dtype: x.dtype, name: model.inputNames[i] });
    mapped.set(key(x), input);
    return input;
  });
  const made: tf.Tensor[] = [];
  try {
    for (const layer of model.layers) {
      if (layer.getClassName() === 'InputLayer') continue;
      const role = plan.get(layer) ?? { kind: 'copy' };
      if (role.kind === 'folded' || role.kind === 'relu') continue;
      if (layer.inboundNodes.length !== 1) throw new Error(`layer ${layer.name} (${layer.getClassName()}) is applied ${layer.inboundNodes.length} times; folding takes layers applied once`);
      if (role.kind === 'copy') {
        const node = layer.inboundNodes[0];
        if (node.outputTensors.length !== 1) throw new Error(`layer ${layer.name} (${layer.getClassName()}) has ${node.outputTensors.length} outputs; folding takes one`);
        const nodeInputs = node.inputTensors.map((t) => mapped.get(key(t))!);
        const clone = new (layer.constructor as LayerConstructor)(layer.getConfig());
        const out = clone.apply(nodeInputs.length === 1 ? nodeInputs[0] : nodeInputs) as SymbolicTensor;
        clone.setWeights(layer.getWeights());
        mapped.set(key(node.outputTensors[0]), out);
        continue;
      }
      const { conv, relu } = role;
      const weights = foldedWeights(conv, layer);
      made.push(...weights);
      const folded = new (conv.constructor as LayerConstructor)({ ...conv.getConfig(), useBias: true, activation: relu ? 'relu' : 'linear' });
      const out = folded.apply(mapped.get(key(conv.inboundNodes[0].inputTensors[0]))!) as SymbolicTensor;
      folded.setWeights(weights);
      mapped.set(key(output(relu ?? layer)), out);
    }
  } finally {
    tf.dispose(made);
  }
  return tfl.model({ inputs, outputs: model.outputs.map((t) => mapped.get(key(t))!), name: model.name });
}
