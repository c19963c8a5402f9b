import type * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { STOCK_LAYER_CLASSES, stockConversion } from './conversions.js';

type SymbolicTensor = tfl.SymbolicTensor;
type LayerConstructor = new (config: tf.serialization.ConfigDict) => tfl.layers.Layer;

/** A copy of `layer` (same class, configuration and weights) applied to `inputs` in another graph. */
export function cloneLayer(layer: tfl.layers.Layer, inputs: SymbolicTensor[]): SymbolicTensor {
  const clone = new (layer.constructor as LayerConstructor)(layer.getConfig());
  const output = clone.apply(inputs.length === 1 ? inputs[0] : inputs) as SymbolicTensor | SymbolicTensor[];
  if (Array.isArray(output)) throw new Error(`layer ${layer.name} (${layer.getClassName()}) has several outputs; an export takes single-output layers`);
  clone.setWeights(layer.getWeights());
  return output;
}

/**
 * How `rebuildModel` rebuilds one layer: its output in the new graph (made from `input`, which maps
 * a tensor of the old graph to the new one), or undefined for a layer the new graph leaves out (a
 * layer that reads its output must not ask for it).
 */
export type RebuildLayer = (layer: tfl.layers.Layer, input: (t: SymbolicTensor) => SymbolicTensor) => SymbolicTensor | undefined;

/**
 * A new functional model with the same inputs and outputs, built layer by layer in the model's
 * order by `rebuild`. Takes layers applied once with one output each, as an export does.
 */
export function rebuildModel(model: tfl.LayersModel, rebuild: RebuildLayer): tfl.LayersModel {
  const mapped = new Map<string, SymbolicTensor>();
  const key = (t: SymbolicTensor) => `${t.id}`;
  const inputs = model.inputs.map((x, i) => {
    const input = tfl.input({ shape: x.shape.slice(1), dtype: x.dtype, name: model.inputNames[i] });
    mapped.set(key(x), input);
    return input;
  });
  for (const layer of model.layers) {
    const className = layer.getClassName();
    if (className === 'InputLayer') continue;
    if (layer.inboundNodes.length !== 1) {
      throw new Error(`layer ${layer.name} (${className}) is applied ${layer.inboundNodes.length} times; an export takes layers applied once`);
    }
    const node = layer.inboundNodes[0];
    if (node.outputTensors.length !== 1) throw new Error(`layer ${layer.name} (${className}) has ${node.outputTensors.length} outputs; an export takes one`);
    const input = (t: SymbolicTensor) => {
      const m = mapped.get(key(t));
      if (!m) throw new Error(`layer ${layer.name} (${className}) reads ${t.name}, which no earlier layer of ${model.name} makes`);
      return m;
    };
    const output = rebuild(layer, input);
    if (output) mapped.set(key(node.outputTensors[0]), output);
  }
  const outputs = model.outputs.map((t) => mapped.get(key(t))!);
  return tfl.model({ inputs, outputs, name: model.name });
}

/**
 * A copy of a functional model made of stock tfjs-layers layers only, with the same weights and the
 * same inference output: custom layers are rebuilt through their registered conversions (see
 * `registerStockConversion`). The copy loads with `tf.loadLayersModel` from `@tensorflow/tfjs` with
 * nothing else registered.
 */
export function toStockModel(model: tfl.LayersModel): tfl.LayersModel {
  return rebuildModel(model, (layer, input) => {
    const className = layer.getClassName();
    const conversion = stockConversion(className);
    if (!conversion && !STOCK_LAYER_CLASSES.has(className)) {
      throw new Error(
        `layer ${layer.name} is a ${className}, which plain tfjs-layers cannot load: register its stock equivalent with ` +
          'registerStockConversion (importing the backbone package that defines it does this for its own layers)',
      );
    }
    const inputs = layer.inboundNodes[0].inputTensors.map(input);
    return conversion ? conversion(layer, inputs) : cloneLayer(layer, inputs);
  });
}
