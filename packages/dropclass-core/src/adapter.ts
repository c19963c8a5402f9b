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
 * {@link defineBackbone} makes one from an option schema (zod, valibot, ArkType or any other
 * Standard Schema), deriving `defaults` and `parseOptions`. Written by hand, `parseOptions` may use
 * any checks, as long as it fills in the defaults and throws a {@link BackboneOptionsError} for bad
 * options.
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
    const all = issues.flatMap((issue) =>
      issue.code === 'unrecognized_keys' && issue.keys
        ? issue.keys.map((key) => ({ path: [path(issue.path), key].filter(Boolean).join('.'), message: 'unknown option: remove it or check its spelling' }))
        : [{ path: path(issue.path), message: issue.message }],
    );
    // a value that fails several checks with the same message is named once
    const unique = all.filter((issue, i) => all.findIndex((other) => other.path === issue.path && other.message === issue.message) === i);
    return new BackboneOptionsError(adapter, unique);
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

/**
 * An option schema as {@link defineBackbone} takes it: the validating part of the Standard Schema
 * interface (version 1, https://standardschema.dev), which zod (3.24 and later), valibot, ArkType
 * and other schema libraries implement on their schemas. `Options` is what a successful validation
 * returns: the complete options, defaults filled in.
 */
export interface BackboneOptionsSchema<Options = unknown> {
  readonly '~standard': {
    readonly version: 1;
    /** The schema library, e.g. `zod`. */
    readonly vendor: string;
    /** Validates a value: the parsed value, or the issues. A Promise (an asynchronous schema) is refused by the core. */
    readonly validate: (value: unknown) => StandardSchemaResult<Options> | Promise<StandardSchemaResult<Options>>;
  };
}

/** What a Standard Schema's `validate` returns: the parsed value, or a list of issues. */
export type StandardSchemaResult<Output> = { readonly value: Output; readonly issues?: undefined } | { readonly issues: readonly SchemaIssue[] };

/**
 * The message of a bad option, as every adapter here words it: `must be <allowed>, got <value>`
 * (numbers as they are, anything else as JSON). A schema's error function (zod's `{ error }`), or
 * called with `{ input }`.
 */
export function mustBe(allowed: string): (issue: { input?: unknown }) => string {
  return ({ input }) => `must be ${allowed}, got ${typeof input === 'number' ? String(input) : JSON.stringify(input)}`;
}

/**
 * Validates raw options with an adapter's schema, as the `parseOptions` of {@link defineBackbone}
 * does: `null` or `undefined` stands for `{}`, keys whose value is `undefined` count as left out
 * (so that `{ depth: options.depth }` means the default when `options.depth` is not given), and
 * the schema's issues become a {@link BackboneOptionsError} for `adapter`, naming each bad key.
 * For builders that take options outside an adapter (a backbone's encoder alone, say).
 *
 * @throws BackboneOptionsError for options the schema refuses.
 * @throws TypeError for an asynchronous schema (its `validate` returns a Promise): options are checked synchronously.
 */
export function parseBackboneOptions<Options>(adapter: string, schema: BackboneOptionsSchema<Options>, raw: unknown): Options {
  const given = raw === undefined || raw === null ? {} : isPlainObject(raw) ? Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)) : raw;
  const result = schema['~standard'].validate(given);
  if (isPromiseLike(result)) {
    // nothing will read it: keep a rejection from being reported as unhandled
    result.then(undefined, () => {});
    throw new TypeError(`the option schema of the ${adapter} backbone is asynchronous (its validate returned a Promise): backbone options are checked synchronously; remove its async refinements or transforms`);
  }
  if (result.issues) throw BackboneOptionsError.fromSchemaIssues(adapter, result.issues);
  return result.value;
}

const isPromiseLike = (value: unknown): value is PromiseLike<unknown> => typeof (value as { then?: unknown } | null)?.then === 'function';

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null);

/** What {@link defineBackbone} makes an adapter from. */
export interface BackboneDefinition<Options extends object> {
  /** The name a run config's `backbone.kind` uses, e.g. `unet`: letters, digits, `.`, `_` or `-`. */
  readonly name: string;
  /** The npm package that exports and registers the adapter; saved with models to name what to install. */
  readonly package?: string;
  /**
   * The options a run config may give (`backbone.options`), as a Standard Schema (a zod object,
   * say): it refuses bad values and unknown keys, and fills in a default for every key left out
   * (it must accept `{}`). The adapter's only check of its options.
   */
  readonly schema: BackboneOptionsSchema<Options>;
  /**
   * Builds a backbone from options the schema has parsed (complete, defaults filled in), plus the
   * {@link CommonBackboneOptions} (`seed`, `inputChannels`; `undefined` when not given).
   */
  create(options: Options & CommonBackboneOptions): SegmentationBackbone;
  /** Optional: reads PyTorch state dicts into backbones of this adapter; see {@link BackboneAdapter.torchWeights}. */
  torchWeights?(fileKeys: readonly string[], options: Options): WeightMap;
}

/**
 * Makes a {@link BackboneAdapter} from an option schema and a builder, so that the options are
 * checked in one place, by the schema: `parseOptions(raw)` validates raw options with it (see
 * {@link parseBackboneOptions}) and throws a {@link BackboneOptionsError} with each issue's key
 * path and message; `defaults` is the schema's parse of `{}`; `create` checks `inputChannels` (a
 * positive integer) and calls the definition's `create`.
 *
 * It does not register the adapter: the package's entry point calls `registerBackbone` on it, so
 * that importing the package registers it, as for an adapter written by hand.
 *
 * ```ts
 * const optionsSchema = z.object({ width: z.number().int().positive().default(16) }).strict();
 * export const fcn = defineBackbone({ name: 'fcn', package: '@acme/backbone-fcn', schema: optionsSchema, create: buildFcn });
 * registerBackbone(fcn); // in the package's index.ts
 * ```
 *
 * @throws TypeError when the schema is not a Standard Schema, is asynchronous, or refuses `{}`.
 */
export function defineBackbone<Options extends object>(definition: BackboneDefinition<Options>): BackboneAdapter<Options> {
  const { name, schema } = definition;
  if (typeof schema?.['~standard']?.validate !== 'function') {
    throw new TypeError(`defineBackbone: the schema of the ${name} backbone is not a Standard Schema (it has no ~standard.validate); zod 3.24+, valibot and ArkType schemas are`);
  }
  if (typeof definition.create !== 'function') throw new TypeError(`defineBackbone: the ${name} backbone needs create(options)`);
  const parseOptions = (raw: unknown): Options => parseBackboneOptions(name, schema, raw);
  let defaults: Options;
  try {
    defaults = parseOptions({});
  } catch (error) {
    if (!(error instanceof BackboneOptionsError)) throw error;
    throw new TypeError(`defineBackbone: the schema of the ${name} backbone must accept {} (give every option a default or make it optional):\n${error.message}`);
  }
  const torchWeights = definition.torchWeights;
  return {
    name,
    ...(definition.package === undefined ? {} : { package: definition.package }),
    defaults: Object.freeze(defaults),
    parseOptions,
    create(options) {
      const { inputChannels } = options;
      if (inputChannels !== undefined && !(Number.isInteger(inputChannels) && inputChannels > 0)) {
        throw new BackboneOptionsError(name, [{ path: 'inputChannels', message: mustBe('a positive integer')({ input: inputChannels }) }]);
      }
      return definition.create(options);
    },
    ...(torchWeights ? { torchWeights: (fileKeys: readonly string[], options: Options) => torchWeights.call(definition, fileKeys, options) } : {}),
  };
}

export type { tf };
