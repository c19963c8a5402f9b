import type * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { STOCK_LAYER_CLASSES, stockConversion } from './conversions.js';

type SymbolicTensor = tfl.SymbolicTensor;
type LayerConstructor = new (config: tf.serialization.ConfigDict) => tfl.layers.Layer;

function cloneStock(layer: tfl.layers.Layer, inputs: SymbolicTensor[]): SymbolicTensor {
  const clone = new (layer.constructor as LayerConstructor)(layer.getConfig());
  const output = clone.apply(inputs.length === 1 ? inputs[0] : inputs) as SymbolicTensor | SymbolicTensor[];
  if (Array.isArray(output)) throw new Error(`layer ${layer.name} (${layer.getClassName()}) has several outputs; an export takes single-output layers`);
  clone.setWeights(layer.getWeights());
  return output;
}

/**
 * A copy of a functional model made of stock tfjs-layers layers only, with the same weights and the
 * same inference output: custom layers are rebuilt through their registered conversions (see
 * `registerStockConversion`). The copy loads with `tf.loadLayersModel` from `@tensorflow/tfjs` with
 * nothing else registered.
 */
export function toStockModel(model: tfl.LayersModel): tfl.LayersModel {
  const mapped = new Map<string, SymbolicTensor>();
  const key = (t: SymbolicTensor) => `${t.id}`;
  const inputs = model.inputs.map((x, i) => {
    const input = tfl.input({ shape: x.shape.slice(1), dtype: x.dtype, name: model.inputNames[i] });
    mapped.set(key(x), input);
    return input;
  });
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    const className = layer.getClassName();
    const conversion = stockConversion(className);
    if (!conversion && !STOCK_LAYER_CLASSES.has(className)) {
      throw new Error(
        `layer ${layer.name} is a ${className}, which plain tfjs-layers cannot load: register its stock equivalent with ` +
          'registerStockConversion (importing the backbone package that defines it does this for its own layers)',
      );
    }
    if (layer.inboundNodes.length !== 1) {
      throw new Error(`layer ${layer.name} (${className}) is applied ${layer.inboundNodes.length} times; an export takes layers applied once`);
    }
    const node = layer.inboundNodes[0];
    const nodeInputs = node.inputTensors.map((t) => {
      const m = mapped.get(key(t));
      if (!m) throw new Error(`layer ${layer.name} (${className}) reads ${t.name}, which no earlier layer of ${model.name} makes`);
      return m;
    });
    if (node.outputTensors.length !== 1) throw new Error(`layer ${layer.name} (${className}) has ${node.outputTensors.length} outputs; an export takes one`);
    const output = conversion ? conversion(layer, nodeInputs) : cloneStock(layer, nodeInputs);
    mapped.set(key(node.outputTensors[0]), output);
  }
  const outputs = model.outputs.map((t) => mapped.get(key(t))!);
  return tfl.model({ inputs, outputs, name: model.name });
}
