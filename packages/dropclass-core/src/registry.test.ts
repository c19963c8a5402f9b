import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type BackboneAdapter, BackboneOptionsError } from './adapter.js';
import { MissingBackboneError } from './model/errors.js';
import { DropClassModel } from './model/model.js';
import { loadModel, saveModel } from './node/index.js';
import { UnknownBackboneError, createBackbone, getBackbone, registerBackbone, registeredBackbones } from './registry.js';
import { useCpuBackend } from '@dropclass/testing/cpu';

interface DenseOptions {
  filters: number;
}

/** An adapter as a plugin writes one: defaults, its own option checks, create. */
const dense: BackboneAdapter<DenseOptions> = {
  name: 'test-dense',
  package: '@acme/backbone-dense',
  defaults: { filters: 4 },
  parseOptions(raw) {
    const options = { ...this.defaults, ...(raw as object) } as Record<string, unknown>;
    const issues = Object.keys(options)
      .filter((k) => k !== 'filters')
      .map((k) => ({ path: k, message: 'unknown option' }));
    if (!Number.isInteger(options.filters) || (options.filters as number) < 1) issues.push({ path: 'filters', message: `must be a positive integer, got ${JSON.stringify(options.filters)}` });
    if (issues.length) throw new BackboneOptionsError(this.name, issues);
    return options as unknown as DenseOptions;
  },
  create({ filters, inputChannels = 3 }) {
    const input = tfl.input({ shape: [null, null, inputChannels] });
    const output = tfl.layers.conv2d({ filters, kernelSize: 1, kernelInitializer: 'ones' }).apply(input) as tfl.SymbolicTensor;
    return { name: 'test-dense', model: tfl.model({ inputs: input, outputs: output }), outputStride: 1, inputChannels, inputSizeMultiple: 1, minInputSize: 1 };
  },
};

describe('backbone registry', () => {
  beforeAll(() => useCpuBackend());
  it('registers an adapter, finds it by name and builds backbones from raw options with its defaults', () => {
    registerBackbone(dense);
    expect(getBackbone('test-dense')).toBe(dense);
    expect(registeredBackbones()).toContain('test-dense');
    const backbone = createBackbone('test-dense', {}, { seed: 3 });
    expect(backbone.model.outputs[0].shape).toEqual([null, null, null, 4]);
    expect(backbone.source).toEqual({ kind: 'test-dense', package: '@acme/backbone-dense', options: { filters: 4 } });
    backbone.model.dispose();
    const wider = createBackbone('test-dense', { filters: 6 });
    expect(wider.model.outputs[0].shape).toEqual([null, null, null, 6]);
    wider.model.dispose();
  });

  it('says which names are known when a name is not, and passes the adapter\'s option errors on', () => {
    registerBackbone(dense);
    expect(() => getBackbone('test-dnse')).toThrow(UnknownBackboneError);
    expect(() => getBackbone('test-dnse')).toThrow(new RegExp(`no backbone "test-dnse" is registered \\(known: ${registeredBackbones().join(', ')}\\)`));
    expect(() => createBackbone('test-dense', { filters: 0, width: 2 })).toThrow(/invalid options for the test-dense backbone:\n {2}width: unknown option\n {2}filters: must be a positive integer, got 0/);
  });

  it('refuses a name another package registered, and adapters without the required members', () => {
    registerBackbone(dense);
    registerBackbone({ ...dense }); // the same package again (e.g. a second copy): replaces
    expect(() => registerBackbone({ ...dense, package: '@other/backbone' })).toThrow(/"test-dense" is already registered by @acme\/backbone-dense; give the adapter from @other\/backbone another name/);
    expect(() => registerBackbone({ ...dense, name: 'has space' })).toThrow(/adapter name must be/);
    expect(() => registerBackbone({ name: 'no-parse', create: dense.create } as unknown as BackboneAdapter)).toThrow(/must have defaults, parseOptions\(raw\) and create\(options\)/);
  });

  it('maps zod-style issues, unknown keys one by one', () => {
    const error = BackboneOptionsError.fromSchemaIssues('x', [
      { code: 'unrecognized_keys', keys: ['depht', 'wdth'], path: [], message: 'Unrecognized keys' },
      { code: 'too_small', path: ['depth'], message: 'Too small: expected number to be >0' },
    ]);
    expect(error.issues).toEqual([
      { path: 'depht', message: 'unknown option: remove it or check its spelling' },
      { path: 'wdth', message: 'unknown option: remove it or check its spelling' },
      { path: 'depth', message: 'Too small: expected number to be >0' },
    ]);
  });

  it('saves where the backbone came from, and a load that meets an unknown layer names the package to install', async () => {
    await useCpuBackend();
    registerBackbone(dense);
    const dir = await mkdtemp(join(tmpdir(), 'dropclass-registry-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const model = DropClassModel.create(createBackbone('test-dense', { filters: 3 }), { numClasses: 2 });
    await saveModel(model, dir);
    model.dispose();
    const info = JSON.parse(await readFile(join(dir, 'dropclass.json'), 'utf8'));
    expect(info.backbone.source).toEqual({ kind: 'test-dense', package: '@acme/backbone-dense', options: { filters: 3 } });
    const loaded = await loadModel(dir);
    expect(loaded.info.backbone.source?.package).toBe('@acme/backbone-dense');
    loaded.dispose();

    // as if the backbone's conv were a custom layer of a package that is not installed
    const modelJson = join(dir, 'model.json');
    const text = await readFile(modelJson, 'utf8');
    await writeFile(modelJson, text.replace('"class_name":"Conv2D"', '"class_name":"AcmeDenseConv"'));
    const error = await loadModel(dir).catch((e: Error) => e);
    expect(error).toBeInstanceOf(MissingBackboneError);
    expect((error as Error).message).toMatch(/model\.json: layer AcmeDenseConv of the test-dense backbone is not registered\. This model needs @acme\/backbone-dense: npm install @acme\/backbone-dense/);

    // an older model without the source still gets a message that names the layer
    await writeFile(join(dir, 'dropclass.json'), JSON.stringify({ ...info, backbone: { ...info.backbone, source: undefined } }));
    await expect(loadModel(dir)).rejects.toThrow(/layer AcmeDenseConv of the test-dense backbone is not registered, and the model does not record which package defines it/);
  });
});
