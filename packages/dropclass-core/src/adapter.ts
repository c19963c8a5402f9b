import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { WeightMap } from './weights/state-dict.js';

/**
 * Where a backbone came from: the adapter that built it, the npm package that registers that
 * adapter and the options it was built with. Saved with a model, so that loading it can name the
 * package to install.
 */
export interface BackboneSource {
  /** The adapter's name (the `kind` of a run config), e.g. `unet`. */
  kind: string;
  /** The npm package whose import registers the adapter, e.g. `@dropclass/backbone-unet`. */
  package?: string;
  /** The adapter's options after `parseOptions` (defaults filled in), without the seed. */
  options: Record<string, unknown>;
}

/**
 * What a backbone gives DropClass: a tfjs-layers model from an image batch `[B,H,W,inputChannels]`
 * to the feature map `A` `[B,H/outputStride,W/outputStride,C]` that enters the classifier. The
 * channel count `C` is not declared: it is read from the model's output shape.
 */
export interface SegmentationBackbone {
  /** Short name used in messages and saved metadata, e.g. `unet` or `deeplabv3-resnet18`. */
  readonly name: string;
  /**
   * Functional model: image batch in, one feature map `A` out, with a known channel count (its last
   * dimension). Its layers are trained with the head.
   */
  readonly model: tfl.LayersModel;
  /** Input size / feature-map size (1 for a decoder that returns full resolution). */
  readonly outputStride: number;
  /** Channels of the input image (3 for RGB). */
  readonly inputChannels: number;
  /** Input height and width must be multiples of this (e.g. 2^depth for a U-Net). */
  readonly inputSizeMultiple: number;
  /** The smallest input height and width the backbone accepts. */
  readonly minInputSize: number;
  /** Set by {@link createBackbone}: the adapter, package and options that built this backbone. */
  readonly source?: BackboneSource;
}

/** Options every adapter's `create` takes besides its own. */
export interface CommonBackboneOptions {
  /** Seeds the initial weights. */
  seed?: number;
  /** Channels of the input image; default 3. */
  inputChannels?: number;
}

/**
 * A backbone adapter: builds backbones from its own options and owns their schema. Register it with
 * `registerBackbone` when its package is imported, and the `dropclass` command line (and
 * `createBackbone`) can build it by name.
 *
 * The core takes no schema library: `parseOptions` may use zod, hand-written checks or anything
 * else, as long as it fills in the defaults and throws a {@link BackboneOptionsError} for bad options.
 */
export interface BackboneAdapter<Options extends object = Record<string, unknown>> {
  /** The name a run config's `backbone.kind` uses, e.g. `unet`. */
  readonly name: string;
  /** The npm package that exports and registers this adapter; saved with models to name what to install. */
  readonly package?: string;
  /** The options used for every key the user leaves out. */
  readonly defaults: Readonly<Options>;
  /** Checks raw options (from JSON) and returns them complete, defaults filled in; throws {@link BackboneOptionsError}. */
  parseOptions(raw: unknown): Options;
  create(options: Options & CommonBackboneOptions): SegmentationBackbone;
  /**
   * Optional: reads PyTorch state dicts (torchvision's, timm's) into backbones of this adapter.
   * Given every key of a weight file (so the kind of file can be told apart, e.g. an ImageNet
   * ResNet from a whole segmentation model) and the backbone's options, returns how the file's keys
   * go onto the model's PyTorch-style keys (`namedWeights`); throws an Error that names the
   * file's kind and what this adapter reads when it knows no such file.
   */
  torchWeights?(fileKeys: readonly string[], options: Options): WeightMap;
}

/** One bad option: its key path (e.g. `depth`) and what is wrong with it. */
export interface BackboneOptionIssue {
  path: string;
  message: string;
}

/** Thrown by `parseOptions` for options an adapter does not take; lists every bad key. */
export class BackboneOptionsError extends Error {
  constructor(
    /** The adapter's name. */
    readonly adapter: string,
    readonly issues: BackboneOptionIssue[],
  ) {
    super(`invalid options for the ${adapter} backbone:\n${issues.map((i) => `  ${i.path || '(options)'}: ${i.message}`).join('\n')}`);
    this.name = 'BackboneOptionsError';
  }

  /**
   * From the issues of a schema library's failed parse: zod's `error.issues`, or any list of
   * `{ path, message }` (Standard Schema issues have that shape). Unknown keys (zod's
   * `unrecognized_keys`) become one issue per key.
   */
  static fromSchemaIssues(adapter: string, issues: readonly SchemaIssue[]): BackboneOptionsError {
    const path = (p: SchemaIssue['path']) => (p ?? []).map((k) => (typeof k === 'object' && k !== null ? String(k.key) : String(k))).join('.');
    return new BackboneOptionsError(
      adapter,
      issues.flatMap((issue) =>
        issue.code === 'unrecognized_keys' && issue.keys
          ? issue.keys.map((key) => ({ path: [path(issue.path), key].filter(Boolean).join('.'), message: 'unknown option: remove it or check its spelling' }))
          : [{ path: path(issue.path), message: issue.message }],
      ),
    );
  }
}

/** A schema library's issue: zod's, or Standard Schema's `{ message, path }`. */
export interface SchemaIssue {
  readonly message: string;
  readonly path?: readonly (PropertyKey | { readonly key: PropertyKey })[];
  readonly code?: string;
  /** zod's unknown keys. */
  readonly keys?: readonly string[];
}

export type { tf };
