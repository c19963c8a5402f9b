import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { registerStockConversion } from '../export/conversions.js';
import { batchNormInTraining, updateMovingStatistics } from '../ops/batch-norm.js';

type LayerArgs = NonNullable<Parameters<typeof tfl.layers.batchNormalization>[0]>;
type Kwargs = Parameters<tfl.layers.Layer['call']>[1];

/**
 * tfjs-layers' batch norm layer. Its class is not exported by name; it is looked up where
 * tfjs-layers registers it for deserialisation, so that no layer is built (which would take one
 * of tfjs-layers' automatic layer names) when this module loads.
 */
const StockBatchNormalization = stockLayerClass('BatchNormalization') as new (args?: LayerArgs) => tfl.layers.Layer;

function stockLayerClass(className: string): unknown {
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  if (!entry) {
    throw new Error(`@dropclass/core (layers/batch-norm.ts): tfjs-layers registers no layer class "${className}"; expected @tensorflow/tfjs-layers 4.x beside @dropclass/core`);
  }
  return entry[0];
}

/** The stock layer's fields this layer reads (declared private there). */
interface StockFields {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tfl.LayerVariable;
  beta: tfl.LayerVariable;
  movingMean: tfl.LayerVariable;
  movingVariance: tfl.LayerVariable;
}

/**
 * tfjs-layers' `BatchNormalization` (same weights, configuration and inference) whose training pass
 * over channels-last input uses `batchNormInTraining` and moves the statistics by the convention of
 * `updateMovingStatistics` (PyTorch's: unbiased moving variance). Backbones use it through
 * `batchNormalization()`; models saved with it load once this package is imported.
 */
export class BatchNormalization extends StockBatchNormalization {
  static className = 'DropClassBatchNormalization';
  /**
   * Whether a ReLU follows in the same layer: in training it is fused into the batch norm's kernel
   * (`batchNormInTraining` with `relu`), which keeps neither the values before it nor a mask for
   * its gradient. Saved with the layer's configuration.
   */
  readonly relu: boolean;

  constructor(args: BatchNormalizationArgs = {}) {
    const { relu = false, ...stock } = args;
    super(stock);
    this.relu = relu;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.relu ? { ...super.getConfig(), relu: true } : super.getConfig();
  }
  /**
   * When true, training runs this layer in inference mode: the moving statistics normalise and are
   * not updated; scale and offset still get gradients (see `DropClassModel.setBackboneNormFrozen`).
   * A training setting, not saved with the model.
   */
  frozenStatistics = false;

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    if (kwargs?.training && this.frozenStatistics) return this.stockCall(inputs, { ...kwargs, training: false });
    const input = Array.isArray(inputs) ? inputs[0] : inputs;
    const self = this as unknown as StockFields;
    const axis = self.axis < 0 ? self.axis + input.rank : self.axis;
    if (!kwargs?.training || axis !== input.rank - 1 || !self.scale || !self.center) return this.stockCall(inputs, kwargs);
    return tf.tidy(() => {
      const { y, mean, variance } = batchNormInTraining(input, self.gamma.read() as tf.Tensor1D, self.beta.read() as tf.Tensor1D, self.epsilon, { relu: this.relu });
      updateMovingStatistics({ mean: self.movingMean, variance: self.movingVariance }, { mean, variance }, input.size / input.shape[axis], 1 - self.momentum);
      return y;
    });
  }

  /** The stock layer's pass, then the ReLU when the layer has one. */
  private stockCall(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    if (!this.relu) return super.call(inputs, kwargs);
    return tf.tidy(() => tf.relu(super.call(inputs, kwargs) as tf.Tensor));
  }
}
tf.serialization.registerClass(BatchNormalization as unknown as tf.serialization.SerializableConstructor<BatchNormalization>);

// In an export: the stock layer, which computes the same in inference, and a stock ReLU after it
// when the layer has one.
registerStockConversion(BatchNormalization.className, (layer, inputs) => {
  const { relu, ...config } = layer.getConfig() as LayerArgs & { relu?: boolean };
  const stock = tfl.layers.batchNormalization(config);
  const output = stock.apply(inputs[0]) as tfl.SymbolicTensor;
  stock.setWeights(layer.getWeights());
  return relu ? (tfl.layers.reLU({ name: `${stock.name}_relu` }).apply(output) as tfl.SymbolicTensor) : output;
});

/** The arguments of tfjs-layers' batch norm layer, and `relu`: a ReLU after it, in the same layer. */
export type BatchNormalizationArgs = LayerArgs & { relu?: boolean };

/** `tfl.layers.batchNormalization` with the faster training pass of `BatchNormalization` (and a fused ReLU with `relu: true`). */
export function batchNormalization(args?: BatchNormalizationArgs): BatchNormalization {
  return new BatchNormalization(args);
}
