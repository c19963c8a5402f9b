import { getBackbone } from '@dropclass/core';
import { runConfigSchema } from './config.js';

/**
 * `dropclass config --print [kind]`: a complete run config with every key at its default and a
 * comment saying what it does, for a backbone kind (U-Net by default). It trains as printed (on the
 * synthetic benchmark, written on the first run); keys that have no default are shown commented out.
 */

/** What each key of a run config does, by dotted key. */
export const CONFIG_KEY_DOCS: Record<string, string> = {
  backbone: 'the network that makes the feature map the DropClass head reads',
  'backbone.kind': 'a registered backbone: unet and deeplabv3 are built in; a plugin package registers others',
  'backbone.package': 'the npm package that registers the backbone (imported from the config file\'s folder, then the working directory)',
  'backbone.options': 'the backbone\'s own options, checked by its adapter (defaults shown)',
  dataset: 'where the images and labels are',
  'dataset.kind': '"folder" (classes.json, <split>/images, <split>/masks), "cityscapes" or "voc"',
  'dataset.root': 'the dataset\'s folder, relative to this file',
  'dataset.trainSplit': 'the split trained on',
  'dataset.evalSplits': 'the splits evaluated at the end of the run (and every evalEvery steps)',
  'dataset.generate': 'write the synthetic long-tailed benchmark to root when it is not there (folder datasets only); remove this key for a dataset of your own',
  'dataset.generate.seed': 'the generator\'s seed',
  'dataset.generate.size': 'image height and width in pixels',
  'dataset.generate.train': 'images in train',
  'dataset.generate.val': 'images in val',
  'dataset.generate.valShifted': 'images in val-shifted (objects on other contexts than in train)',
  'dataset.skipBad': 'leave out the samples the check before the run finds bad (they are listed) instead of stopping',
  numClasses: 'classes of the model; default: the dataset\'s class count (a different count is refused)',
  crop: '[height, width] of the random crop each training image gives, in pixels',
  scale: '[min, max] of the random rescaling before the crop',
  flip: 'random horizontal flips in training',
  mean: 'per-channel mean subtracted from RGB pixels in 0..255 (ImageNet\'s by default)',
  std: 'per-channel standard deviation the pixels are divided by',
  batchSize: 'images per training step',
  iterations: 'training steps; the learning rate and the DropClass schedule run over them',
  learningRate: 'initial learning rate of SGD, decayed by the poly rule',
  momentum: 'SGD momentum',
  weightDecay: 'L2 weight decay',
  polyPower: 'power of the poly learning-rate decay: lr * (1 - step / iterations) ^ polyPower',
  dropclass: 'train with DropClass (true) or as a plain baseline with the same network (false)',
  alpha: 'weight of the suppression term of the objective',
  seed: 'seed of the initial weights, the batches and the dropped classes',
  evalEvery: 'evaluate every this many steps during training (0: only at the end)',
  checkpointEvery: 'write a checkpoint every this many steps (and at the end, and on Ctrl-C)',
  rareThreshold: 'classes under this share of the training pixels count as under-represented in reports',
  evalBatchSize: 'images of the same size evaluated together',
  inference: 'how evaluation predicts whole images',
  'inference.window': '[height, width] of a sliding window (absent: whole images, padded)',
  'inference.stride': '[height, width] between windows (default: half the window)',
  'inference.flip': 'test-time augmentation: average the logits of the flipped image too',
  'inference.scales': 'test-time augmentation: image scales whose logits are averaged',
  'dataset.generate.mode': '"pretrain" writes the balanced pretraining set (every object class on every context, splits train and val) instead of the benchmark',
  init: 'start from other weights (fine-tuning): "from" a finished run, a saved model or a .safetensors file (torchvision/timm names for deeplabv3), relative to this file; "parts" loaded from it, the others start afresh',
  lrMultipliers: 'per-part factors on the learning rate, e.g. a tenth for a pretrained backbone',
  freezeBackboneNorm: 'the backbone\'s batch norms keep their moving statistics and normalise with them (mmsegmentation\'s norm_eval)',
  loss: 'the pixel loss of the cross-entropy terms: kind "ce", "focal" (gamma) or "ohem" (threshold, minKept); classWeights "none", "inverse", "median" or one per class',
};

/** Keys with no default, shown commented out, with an example value. */
const OPTIONAL_EXAMPLES: Record<string, unknown> = {
  'backbone.package': '@acme/backbone-fcn',
  'dataset.skipBad': true,
  numClasses: 8,
  'inference.window': [512, 512],
  'inference.stride': [256, 256],
  'dataset.generate.mode': 'pretrain',
  init: { from: 'runs/pretrained', parts: ['backbone', 'classifier'] },
  lrMultipliers: { backbone: 0.1 },
  freezeBackboneNorm: true,
  loss: { kind: 'ce', classWeights: 'median' },
};

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => !!v && typeof v === 'object' && !Array.isArray(v);

function render(value: Json, path: string, indent: string): string[] {
  const lines: string[] = [];
  const keys = Object.keys(value);
  const optional = Object.keys(OPTIONAL_EXAMPLES).filter((k) => k.startsWith(path ? `${path}.` : '') && !k.slice(path ? path.length + 1 : 0).includes('.'));
  keys.forEach((key, i) => {
    const full = path ? `${path}.${key}` : key;
    const doc = CONFIG_KEY_DOCS[full];
    if (doc) lines.push(`${indent}// ${doc}`);
    const comma = i < keys.length - 1 ? ',' : '';
    const v = value[key];
    if (isObject(v) && Object.keys(v).length > 0) {
      lines.push(`${indent}${JSON.stringify(key)}: {`, ...render(v, full, `${indent}  `), `${indent}}${comma}`);
    } else {
      lines.push(`${indent}${JSON.stringify(key)}: ${JSON.stringify(v)}${comma}`);
    }
  });
  for (const key of optional) {
    const name = key.slice(path ? path.length + 1 : 0);
    if (name in value) continue;
    lines.push(`${indent}// ${CONFIG_KEY_DOCS[key]}`, `${indent}// ${JSON.stringify(name)}: ${JSON.stringify(OPTIONAL_EXAMPLES[key])},`);
  }
  return lines;
}

/** The commented default run config for a backbone kind. */
export function printDefaultConfig(kind = 'unet'): string {
  // Unknown kinds are refused with the registered ones named (a plugin's, once --package imported it).
  const adapter = getBackbone(kind);
  const minimal = {
    backbone: { kind, ...(adapter.package ? { package: adapter.package } : {}), options: adapter.defaults as Json },
    dataset: { kind: 'folder', root: 'data/synthetic', generate: {} },
    crop: [64, 64],
    batchSize: 8,
    iterations: 1000,
  };
  const config = runConfigSchema.parse(minimal) as unknown as Json;
  return [
    `// A DropClass run config (${kind} backbone), every key at its default: dropclass config --print ${kind} > run.json`,
    '// Comments are allowed. "extends": "base.json" takes the keys of another config, which this file\'s override;',
    '// dropclass train --config run.json --set key=value (e.g. --set iterations=2000) overrides a key for one run.',
    '{',
    ...render(config, '', '  '),
    '}',
  ].join('\n');
}
