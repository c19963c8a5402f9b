import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { type BackboneOptionsSchema, BackboneOptionsError, type CommonBackboneOptions, type StandardSchemaResult, defineBackbone, parseBackboneOptions } from './adapter.js';
import { createBackbone, getBackbone, registerBackbone } from './registry.js';
import { useCpuBackend } from '@dropclass/testing/cpu';

interface ConvOptions {
  filters: number;
  mode: 'plain' | 'wide';
}

/**
 * A Standard Schema written by hand, as a schema library implements one (the core knows none):
 * `filters` (positive integer, default 4) and `mode` (`plain` or `wide`, default `plain`), no other key.
 */
const convSchema: BackboneOptionsSchema<ConvOptions> = {
  '~standard': {
    version: 1,
    vendor: 'hand-written',
    validate(value): StandardSchemaResult<ConvOptions> {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return { issues: [{ message: `expected an object, got ${JSON.stringify(value)}` }] };
      // a key that is present is checked, even when its value is undefined (as valibot's exactOptional does)
      const { filters, mode, ...rest } = { filters: 4, mode: 'plain', ...(value as Record<string, unknown>) };
      const issues = Object.keys(rest).map((key) => ({ message: 'not an option', path: [{ key }] }));
      if (!Number.isInteger(filters) || (filters as number) < 1) issues.push({ message: `must be a positive integer, got ${JSON.stringify(filters)}`, path: [{ key: 'filters' }] });
      if (mode !== 'plain' && mode !== 'wide') issues.push({ message: `must be plain or wide, got ${JSON.stringify(mode)}`, path: [{ key: 'mode' }] });
      return issues.length ? { issues } : { value: { filters: filters as number, mode: mode as ConvOptions['mode'] } };
    },
  },
};

const built: (ConvOptions & CommonBackboneOptions)[] = [];

const conv = defineBackbone({
  name: 'test-defined-conv',
  package: '@acme/backbone-conv',
  schema: convSchema,
  create(options) {
    built.push(options);
    const inputChannels = options.inputChannels ?? 3;
    const input = tfl.input({ shape: [null, null, inputChannels] });
    const filters = options.mode === 'wide' ? 2 * options.filters : options.filters;
    const output = tfl.layers.conv2d({ filters, kernelSize: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: options.seed ?? 0 }) }).apply(input) as tfl.SymbolicTensor;
    return { name: 'test-defined-conv', model: tfl.model({ inputs: input, outputs: output }), outputStride: 1, inputChannels, inputSizeMultiple: 1, minInputSize: 1 };
  },
  torchWeights: (fileKeys, options) => ({ description: `${fileKeys.length} keys, ${options.filters} filters`, translate: (key) => key, covers: () => true }),
});

/** A schema whose `validate` answers with a Promise for the values `isAsync` picks (as zod does for async refinements). */
function asyncSchema(isAsync: (value: unknown) => boolean): BackboneOptionsSchema<{ n: number }> {
  return {
    '~standard': {
      version: 1,
      vendor: 'test',
      validate: (value) => {
        const result = { value: { n: 1, ...(value as object) } };
        return isAsync(value) ? Promise.resolve(result) : result;
      },
    },
  };
}

describe('defineBackbone', () => {
  beforeAll(() => useCpuBackend());

  it('parses options with the schema: valid ones come back complete, defaults are the parse of {}', () => {
    expect(conv.name).toBe('test-defined-conv');
    expect(conv.package).toBe('@acme/backbone-conv');
    expect(conv.defaults).toEqual({ filters: 4, mode: 'plain' });
    expect(Object.isFrozen(conv.defaults)).toBe(true);
    expect(conv.parseOptions({ filters: 8 })).toEqual({ filters: 8, mode: 'plain' });
    expect(conv.parseOptions({ filters: 2, mode: 'wide' })).toEqual({ filters: 2, mode: 'wide' });
    // no options, and keys given as undefined, mean the defaults
    expect(conv.parseOptions(undefined)).toEqual(conv.defaults);
    expect(conv.parseOptions(null)).toEqual(conv.defaults);
    expect(conv.parseOptions({ filters: undefined, mode: 'wide' })).toEqual({ filters: 4, mode: 'wide' });
    expect(conv.parseOptions(conv.parseOptions({ mode: 'wide' }))).toEqual({ filters: 4, mode: 'wide' });
  });

  it("refuses invalid options with a BackboneOptionsError that names each bad key's path and the schema's message", () => {
    const error = (() => {
      try {
        conv.parseOptions({ filters: 0, mode: 'tall', fliters: 3 });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(BackboneOptionsError);
    expect((error as BackboneOptionsError).adapter).toBe('test-defined-conv');
    expect((error as BackboneOptionsError).issues).toEqual([
      { path: 'fliters', message: 'not an option' },
      { path: 'filters', message: 'must be a positive integer, got 0' },
      { path: 'mode', message: 'must be plain or wide, got "tall"' },
    ]);
    expect((error as Error).message).toBe(
      'invalid options for the test-defined-conv backbone:\n  fliters: not an option\n  filters: must be a positive integer, got 0\n  mode: must be plain or wide, got "tall"',
    );
    expect(() => conv.parseOptions([1, 2])).toThrow(/^invalid options for the test-defined-conv backbone:\n {2}\(options\): expected an object, got \[1,2\]$/);
  });

  it('joins nested paths (keys and path segments) and names a repeated issue once', () => {
    const schema: BackboneOptionsSchema<object> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: (value) =>
          Object.keys(value as object).length === 0
            ? { value: {} }
            : {
                issues: [
                  { message: 'must be positive', path: ['head', { key: 0 }, 'width'] },
                  { message: 'must be positive', path: ['head', { key: 0 }, 'width'] },
                  { message: 'must be an integer', path: ['head', { key: 0 }, 'width'] },
                ],
              },
      },
    };
    const nested = defineBackbone({ name: 'test-nested', schema, create: conv.create });
    expect(() => nested.parseOptions({ head: [{ width: -0.5 }] })).toThrow(/^invalid options for the test-nested backbone:\n {2}head\.0\.width: must be positive\n {2}head\.0\.width: must be an integer$/);
    expect(nested.package).toBeUndefined();
    expect('package' in nested).toBe(false);
  });

  it('registers with registerBackbone and builds through createBackbone: create gets the parsed options and the common ones', () => {
    registerBackbone(conv);
    expect(getBackbone('test-defined-conv')).toBe(conv);
    built.length = 0;
    const backbone = createBackbone('test-defined-conv', { mode: 'wide' }, { seed: 5, inputChannels: 2 });
    expect(built).toEqual([{ filters: 4, mode: 'wide', seed: 5, inputChannels: 2 }]);
    expect(backbone.model.outputs[0].shape).toEqual([null, null, null, 8]);
    expect(backbone.model.inputs[0].shape).toEqual([null, null, null, 2]);
    expect(backbone.source).toEqual({ kind: 'test-defined-conv', package: '@acme/backbone-conv', options: { filters: 4, mode: 'wide' } });
    backbone.model.dispose();
    expect(() => createBackbone('test-defined-conv', { filters: -1 })).toThrow(/test-defined-conv backbone:\n {2}filters: must be a positive integer, got -1/);
    expect(() => conv.create({ ...conv.defaults, inputChannels: 0 })).toThrow(/^invalid options for the test-defined-conv backbone:\n {2}inputChannels: must be a positive integer, got 0$/);
    expect(conv.torchWeights!(['a', 'b'], conv.parseOptions({ filters: 6 })).description).toBe('2 keys, 6 filters');
    expect(defineBackbone({ name: 'test-no-weights', schema: convSchema, create: conv.create }).torchWeights).toBeUndefined();
  });

  it('refuses an asynchronous schema with a TypeError, when defined and when parsing', () => {
    expect(() => defineBackbone({ name: 'test-async', schema: asyncSchema(() => true), create: conv.create as never })).toThrow(TypeError);
    expect(() => defineBackbone({ name: 'test-async', schema: asyncSchema(() => true), create: conv.create as never })).toThrow(
      /option schema of the test-async backbone is asynchronous \(its validate returned a Promise\)/,
    );
    // asynchronous only for some values (an async refinement on an optional key): refused where it is
    const sometimes = defineBackbone({ name: 'test-async-n', schema: asyncSchema((v) => (v as { n?: unknown }).n !== undefined), create: conv.create as never });
    expect(sometimes.defaults).toEqual({ n: 1 });
    expect(() => sometimes.parseOptions({ n: 2 })).toThrow(TypeError);
    expect(() => parseBackboneOptions('test-async-n', asyncSchema(() => true), {})).toThrow(/asynchronous/);
  });

  it('refuses a schema that is not a Standard Schema, or that refuses {}', () => {
    expect(() => defineBackbone({ name: 'test-zodlike', schema: { parse: () => ({}) } as never, create: conv.create })).toThrow(/not a Standard Schema \(it has no ~standard\.validate\)/);
    const required: BackboneOptionsSchema<{ width: number }> = {
      '~standard': { version: 1, vendor: 'test', validate: (v) => (typeof (v as { width?: unknown }).width === 'number' ? { value: v as { width: number } } : { issues: [{ message: 'Required', path: ['width'] }] }) },
    };
    expect(() => defineBackbone({ name: 'test-required', schema: required, create: conv.create as never })).toThrow(/schema of the test-required backbone must accept \{\}[^]*width: Required/);
  });
});
