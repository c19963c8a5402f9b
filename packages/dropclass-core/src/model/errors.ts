import type { StepLosses } from './model.js';

/** Thrown when a step's loss is NaN or infinite; the weights are left as they were before the step. */
export class NonFiniteLossError extends Error {
  constructor(readonly step: number, readonly losses: StepLosses) {
    super(
      `the loss became ${losses.total} at step ${step} (ce ${losses.lossCe}, drop ${losses.lossDrop}, sup ${losses.lossSup}); ` +
        'the weights were not updated: lower the learning rate or check the inputs for NaN',
    );
  }
}

/** Thrown by `DropClassModel.load` when the backbone's layers are not registered: names the package to install. */
export class MissingBackboneError extends Error {
  constructor(
    message: string,
    /** The package that registers the backbone's layers, when the saved model names one. */
    readonly packageName: string | undefined,
    /** The layer class tfjs does not know. */
    readonly layer: string,
  ) {
    super(message);
    this.name = 'MissingBackboneError';
  }
}
