import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createResNetEncoder } from '@dropclass/backbone-deeplab';
import { DropClassModel, encodeSafetensors, namedWeights, torchShape } from '@dropclass/core';
import { loadModel } from '@dropclass/core/node';
import { initBackend } from '@dropclass/tfjs-wasm-train';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoints, type InitRecord, createRunModel, initialiseWeights, openTrainingData, parseRunConfig, train } from '@dropclass/train';
import { dropclass as runCli } from './support.js';


const dropclass = (args: string[], cwd: string) => runCli(args, { cwd });

const unet = (root: string, extra: Record<string, unknown> = {}) => ({
  backbone: { kind: 'unet', options: { base: 2, depth: 1 } },
  dataset: { kind: 'folder', root, evalSplits: ['val'], generate: { seed: 0, size: 16, train: 8, val: 3, valShifted: 3 } },
  crop: [16, 16],
  batchSize: 2,
  iterations: 4,
  checkpointEvery: 2,
  learningRate: 0.02,
  ...extra,
});

const deeplab = (root: string, extra: Record<string, unknown> = {}) => ({
  ...unet(root),
  backbone: { kind: 'deeplabv3', options: { layout: 'resnet18', width: 0.125, asppChannels: 8 } },
  dataset: { kind: 'folder', root, evalSplits: ['val'], generate: { seed: 0, size: 32, train: 8, val: 2, valShifted: 2 } },
  crop: [32, 32],
  iterations: 2,
  ...extra,
});

/** A model's weights by their PyTorch keys (values in tfjs layout). */
const valuesOf = (model: DropClassModel, part?: string) =>
  Object.fromEntries(model.namedWeights().filter((w) => !part || w.part === part).map((w) => [w.key, Array.from(w.variable.read().dataSync())]));

/** A torchvision-style ResNet-18 file (width 1/8) with random weights, and its values by key in PyTorch layout. */
function resnetFile(seed: number): { bytes: Uint8Array; values: Map<string, Float32Array> } {
  const encoder = createResNetEncoder({ layout: 'resnet18', width: 0.125, seed });
  const tensors: Record<string, { shape: number[]; values: Float32Array }> = {};
  for (const w of namedWeights(encoder.weights)) {
    const t = tf.tidy(() => (w.layout === 'conv' ? tf.transpose(w.variable.read(), [3, 2, 0, 1]) : w.variable.read().clone()));
    tensors[w.key] = { shape: torchShape(w), values: t.dataSync() as Float32Array };
    t.dispose();
  }
  tensors['fc.weight'] = { shape: [10, 64], values: new Float32Array(640).fill(0.5) };
  tensors['fc.bias'] = { shape: [10], values: new Float32Array(10) };
  encoder.dispose();
  return { bytes: encodeSafetensors(tensors, { format: 'pt' }), values: new Map(Object.entries(tensors).map(([k, v]) => [k, v.values])) };
}

describe('starting a run from other weights (init)', () => {
  let dir: string;
  const lines: string[] = [];
  const log = (line: string) => lines.push(line);
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dropclass-init-'));
    await initBackend({ backend: 'wasm', quiet: true });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a DropClass run from a baseline run: backbone and classifier equal the source before step 1, the selection layer is new, and the log says so', async () => {
    const base = parseRunConfig({ ...unet(join(dir, 'data')), dropclass: false });
    const trained = await train(base, { out: join(dir, 'runs/base'), log });
    trained.model.dispose();
    const config = parseRunConfig({ ...unet(join(dir, 'data')), seed: 3, init: { from: join(dir, 'runs/base') } });
    const data = await openTrainingData(config, log);
    const model = createRunModel(config, data);
    const fresh = createRunModel(config, data);
    lines.length = 0;
    const record: InitRecord = await initialiseWeights(model, config, log);
    const source = await loadModel((await new Checkpoints(join(dir, 'runs/base/checkpoints')).latest())!.dir);
    expect(Object.values(valuesOf(model, 'backbone'))).toEqual(Object.values(valuesOf(source, 'backbone')));
    expect(valuesOf(model, 'classifier')).toEqual(valuesOf(source, 'classifier'));
    expect(valuesOf(model, 'selection')).toEqual(valuesOf(fresh, 'selection'));
    expect(record).toMatchObject({ kind: 'model', step: 4, parts: ['backbone', 'classifier'] });
    expect(record.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(lines[0]).toMatch(/^init: \d+ tensors loaded from .*runs\/base \(a saved DropClass model, step 4\): backbone \d+, classifier 2$/);
    expect(lines[1]).toBe('init: 6 tensors newly initialised (selection: part selection not loaded, 6)');
    for (const m of [model, fresh, source]) m.dispose();
  });

  it('a DeepLabV3 run from a torchvision-style ResNet file: the encoder equals the file, the ASPP and head are new', async () => {
    const { bytes, values } = resnetFile(7);
    const file = join(dir, 'resnet18-w0125.safetensors');
    await writeFile(file, bytes);
    const config = parseRunConfig(deeplab(join(dir, 'data32'), { init: { from: file, parts: ['backbone'] } }));
    const data = await openTrainingData(config, log);
    const model = createRunModel(config, data);
    lines.length = 0;
    const record = await initialiseWeights(model, config, log);
    const conv = model.namedWeights().find((w) => w.key === 'layer3.1.conv2.weight')!;
    const asTorch = tf.tidy(() => tf.transpose(conv.variable.read(), [3, 2, 0, 1]).dataSync());
    expect(Array.from(asTorch)).toEqual(Array.from(values.get('layer3.1.conv2.weight')!));
    expect(Array.from(model.namedWeights().find((w) => w.key === 'bn1.running_var')!.variable.read().dataSync())).toEqual(Array.from(values.get('bn1.running_var')!));
    expect(record.report.ignored.sort()).toEqual(['fc.bias', 'fc.weight']);
    expect(record.report.initialised.filter((i) => i.part === 'backbone').every((i) => i.key.startsWith('aspp.'))).toBe(true);
    expect(lines[0]).toMatch(/^init: \d+ tensors loaded from .*resnet18-w0125\.safetensors \(torchvision\/timm ResNet \(encoder only\)\): backbone \d+$/);
    expect(lines[1]).toMatch(/^init: \d+ tensors newly initialised \(backbone: torchvision\/timm ResNet \(encoder only\) does not hold it, \d+; classifier: part classifier not loaded, 2; selection: part selection not loaded, 6\)$/);
    expect(lines[2]).toBe('init: 2 tensors of the source ignored: fc.weight, fc.bias');
    model.dispose();
  });

  it('the command line: --init trains from the weights, records them, and refuses bad sources before any work', async () => {
    const base = await writeFile(join(dir, 'dc.json'), JSON.stringify(unet('data')));
    expect(base).toBeUndefined();
    const run = await dropclass(['train', '--config', 'dc.json', '--init', 'runs/base', '--out', 'runs/ft'], dir);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/init: \d+ tensors loaded from .*runs\/base \(a saved DropClass model, step 4\): backbone \d+, classifier 2\ninit: 6 tensors newly initialised \(selection: part selection not loaded, 6\)/);
    const record = JSON.parse(readFileSync(join(dir, 'runs/ft/init.json'), 'utf8'));
    expect(record).toMatchObject({ from: join(dir, 'runs/base'), kind: 'model', parts: ['backbone', 'classifier'] });
    expect(JSON.parse(readFileSync(join(dir, 'runs/ft/config.json'), 'utf8')).init).toEqual({ from: join(dir, 'runs/base'), parts: ['backbone', 'classifier'] });

    // Another network: every mismatched key named, exit 1, nothing trained.
    await writeFile(join(dir, 'wide.json'), JSON.stringify({ ...unet('data'), backbone: { kind: 'unet', options: { base: 3, depth: 1 } }, init: { from: 'runs/base' } }));
    const wide = await dropclass(['train', '--config', 'wide.json', '--out', 'runs/wide'], dir);
    expect(wide.code).toBe(1);
    expect(wide.stderr).toMatch(/runs\/base does not fit the model:\n {2}mismatched shapes \(\d+\): conv2d\w*\.weight.*: model \[3, 3, 3, 3\], source \[2, 3, 3, 3\]/);
    expect(existsSync(join(dir, 'runs/wide/checkpoints'))).toBe(false);

    // A truncated weight file and a pickle are named with what to do.
    const { bytes } = resnetFile(1);
    // Cut 100 bytes into the data: the header is whole, every tensor but the first runs past the end.
    await writeFile(join(dir, 'cut.safetensors'), bytes.subarray(0, 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true)) + 100));
    await writeFile(join(dir, 'dl.json'), JSON.stringify(deeplab('data32', { init: { from: 'cut.safetensors', parts: ['backbone'] } })));
    const cut = await dropclass(['train', '--config', 'dl.json', '--out', 'runs/cut'], dir);
    expect(cut.code).toBe(1);
    expect(cut.stderr).toMatch(/cut\.safetensors: is not a valid safetensors file \(\d+ bad tensor entries\)\. Write the file again .*:\n {2}\S+: data_offsets \[\d+, \d+\] run past the end of the data \(100 bytes\)/);
    await writeFile(join(dir, 'model.pth'), 'PK');
    const pickle = await dropclass(['train', '--config', 'dl.json', '--init', 'model.pth', '--out', 'runs/pth'], dir);
    expect(pickle.code).toBe(1);
    expect(pickle.stderr).toMatch(/model\.pth: is a PyTorch pickle \(\.pth\), which cannot be read without Python\. Convert it once where PyTorch is installed: python3 -c/);
    await writeFile(join(dir, 'unet-file.json'), JSON.stringify({ ...unet('data'), init: { from: 'cut.safetensors' } }));
    const noMap = await dropclass(['train', '--config', 'unet-file.json', '--out', 'runs/nomap'], dir);
    expect(noMap.code).toBe(1);
    expect(noMap.stderr).toMatch(/unet-file\.json: init\.from .*cut\.safetensors: the unet backbone reads no PyTorch weight files; start from a run or saved model of this backbone instead/);
    const missing = await dropclass(['train', '--config', 'dc.json', '--init', 'runs/nowhere', '--out', 'runs/x'], dir);
    expect(missing.stderr).toMatch(/--init runs\/nowhere does not exist; give a finished run, a saved model or a \.safetensors file/);
    // An unfinished run is not a starting point.
    await writeFile(join(dir, 'long.json'), JSON.stringify({ ...unet('data'), iterations: 8 }));
    const partial = await dropclass(['train', '--config', 'long.json', '--out', 'runs/partial'], dir);
    expect(partial.code).toBe(0);
    await rm(join(dir, 'runs/partial/eval.json'));
    const fromPartial = await dropclass(['train', '--config', 'dc.json', '--init', 'runs/partial', '--out', 'runs/fp'], dir);
    expect(fromPartial.code).toBe(1);
    expect(fromPartial.stderr).toMatch(/init\.from .*runs\/partial is an unfinished run; finish it first \(dropclass train --resume\), or give one of its checkpoint directories/);
  }, 300_000);

  it('lrMultipliers 0 and freezeBackboneNorm keep the loaded backbone exactly, moving statistics included, while the classifier trains', async () => {
    await writeFile(join(dir, 'frozen.json'), JSON.stringify({ ...unet('data'), dropclass: false, init: { from: 'runs/base' }, lrMultipliers: { backbone: 0 }, freezeBackboneNorm: true }));
    const run = await dropclass(['train', '--config', 'frozen.json', '--out', 'runs/frozen'], dir);
    expect(run.code).toBe(0);
    const load = async (run: string) => loadModel((await new Checkpoints(join(dir, run, 'checkpoints')).latest())!.dir);
    const [source, frozen] = [await load('runs/base'), await load('runs/frozen')];
    expect(Object.values(valuesOf(frozen, 'backbone'))).toEqual(Object.values(valuesOf(source, 'backbone')));
    expect(valuesOf(frozen, 'classifier')).not.toEqual(valuesOf(source, 'classifier'));
    source.dispose();
    frozen.dispose();
  }, 120_000);

  it('loss options: resolved class weights are logged and saved with the model; bad ones are refused with the class count', async () => {
    await writeFile(join(dir, 'weighted.json'), JSON.stringify({ ...unet('data'), loss: { kind: 'focal', classWeights: 'median' } }));
    const run = await dropclass(['train', '--config', 'weighted.json', '--out', 'runs/weighted'], dir);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/loss: focal loss \(gamma 2\), class weights \(median frequency\): road [\d.]+, grass [\d.]+, .*crab [\d.]+/);
    const latest = (await new Checkpoints(join(dir, 'runs/weighted/checkpoints')).latest())!;
    const info = JSON.parse(await readFile(join(latest.dir, 'dropclass.json'), 'utf8'));
    expect(info.loss.kind).toBe('focal');
    expect(info.loss.classWeights).toHaveLength(8);
    await writeFile(join(dir, 'short.json'), JSON.stringify({ ...unet('data'), loss: { classWeights: [1, 2, 3] } }));
    const short = await dropclass(['train', '--config', 'short.json', '--out', 'runs/short'], dir);
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/loss\.classWeights has 3 weights, but the dataset has 8 classes \(road, grass, water, sand, car, cow, boat, crab\); give one per class/);
    await writeFile(join(dir, 'mixed.json'), JSON.stringify({ ...unet('data'), loss: { kind: 'ce', minKept: 10 } }));
    const mixed = await dropclass(['train', '--config', 'mixed.json', '--out', 'runs/mixed'], dir);
    expect(mixed.stderr).toMatch(/mixed\.json: invalid run config\n {2}loss\.kind: threshold and minKept are OHEM's: set kind to "ohem" or remove them/);
  }, 120_000);
});

describe('the main job in the fine-tuning regime', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dropclass-finetune-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('pretrains each seed once on the balanced set, fine-tunes every mode from it, reuses it on the next run and refuses it under another config', async () => {
    const args = ['main', '--quick', '--regime', 'finetune', '--modes', 'baseline,dropclass,weighted-ce', '--jobs', '2', '--resamples', '50', '--results', 'docs/ft.md'];
    const run = await dropclass(args, dir);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/writing the synthetic pretraining set \(balanced classes and contexts\) to .*data\/synthetic-quick-pretrain/);
    expect(run.stderr.match(/started seed 0 pretrain/g)).toHaveLength(1);
    expect(run.stderr.indexOf('finished seed 0 pretrain')).toBeLessThan(run.stderr.indexOf('started seed 0 baseline'));
    const out = join(dir, 'runs/main-finetune-quick/seed-0');
    for (const mode of ['baseline', 'dropclass', 'weighted-ce']) {
      const init = JSON.parse(readFileSync(join(out, mode, 'init.json'), 'utf8'));
      expect(init).toMatchObject({ from: join(out, 'pretrain'), kind: 'model', parts: ['backbone'] });
    }
    const pretrainConfig = JSON.parse(readFileSync(join(out, 'pretrain/config.json'), 'utf8'));
    expect(pretrainConfig).toMatchObject({ dropclass: false, dataset: { root: join(dir, 'data/synthetic-quick-pretrain'), evalSplits: ['val'], generate: { mode: 'pretrain' } } });
    expect(readFileSync(join(out, 'weighted-ce/train.log'), 'utf8')).toMatch(/loss: cross-entropy, class weights \(median frequency\): road/);
    const page = await readFile(join(dir, 'docs/ft.md'), 'utf8');
    expect(page).toMatch(/^# baseline vs DropClass vs weighted CE on the synthetic long-tailed, context-biased benchmark: finetune regime/);
    expect(page).toMatch(/- Pretraining: per seed one 4-step baseline run on the balanced pretraining set \(generator version 2, seed 0, 32x32: train 24 images .*\); its mIoU on the pretraining set's val [\d.]+ by seed .* Each run below loads its backbone and trains from there\./);
    expect(page).toMatch(/\| class +\| group +\| train pixels +\| val instances +\| +baseline IoU \[95% CI\] \| +DropClass IoU \[95% CI\] \| +weighted CE IoU \[95% CI\] \|/);
    for (const title of ['### DropClass - baseline on val', '### weighted CE - baseline on val-shifted']) expect(page).toContain(title);

    const again = await dropclass(args, dir);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/seed-0\/pretrain is a finished run of this config; reusing it/);
    expect(again.stderr).not.toMatch(/started seed/);
    // Another set of modes over the same runs: its report goes to a folder of its own; the first comparison's stays as it was.
    const runsDir = join(dir, 'runs/main-finetune-quick');
    const first = join(runsDir, 'compare-baseline,dropclass,weighted-ce');
    const firstReport = readFileSync(join(first, 'report.md'), 'utf8');
    const firstSeedTable = readFileSync(join(first, 'seed-0/vs-dropclass/comparison.md'), 'utf8');
    const onWeighted = await dropclass(['main', '--quick', '--regime', 'finetune', '--modes', 'weighted-ce,dropclass', '--jobs', '2', '--resamples', '50', '--results', 'docs/ft-on-weighted.md'], dir);
    expect(onWeighted.code).toBe(0);
    expect(onWeighted.stderr).not.toMatch(/started seed/);
    const compared = join(runsDir, 'compare-weighted-ce,dropclass');
    expect(onWeighted.stderr).toContain('report: runs/main-finetune-quick/compare-weighted-ce,dropclass/report.md');
    expect(readFileSync(join(compared, 'report.md'), 'utf8')).toMatch(/^# weighted CE vs DropClass on the synthetic/);
    expect(readFileSync(join(compared, 'seed-0/vs-dropclass/comparison.md'), 'utf8')).not.toBe(firstSeedTable);
    expect(readFileSync(join(first, 'report.md'), 'utf8')).toBe(firstReport);
    expect(readFileSync(join(first, 'seed-0/vs-dropclass/comparison.md'), 'utf8')).toBe(firstSeedTable);
    const secondPage = await readFile(join(dir, 'docs/ft-on-weighted.md'), 'utf8');
    expect(secondPage).toContain('](ft-on-weighted/iou-ci-val.png)');
    expect(secondPage).toContain('[weighted-ce, seed 0](ft-on-weighted/seed-0_weighted-ce_dependency.png)');
    expect(secondPage).toContain('](../runs/main-finetune-quick/compare-weighted-ce,dropclass/seed-0/vs-dropclass/comparison.md)');
    for (const f of ['iou-ci-val.png', 'seed-0_weighted-ce_dependency.png', 'seed-0_dropclass_dependency.png']) expect(existsSync(join(dir, 'docs/ft-on-weighted', f)), f).toBe(true);
    const other = await dropclass([...args, '--pretrain-iterations', '6'], dir);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/seed-0\/pretrain holds a finished run of another config .*differing: iterations\. It is not reused: run the job again with --fresh/);
    const unknown = await dropclass(['main', '--quick', '--modes', 'baseline,dropclass-alpha7'], dir);
    expect(unknown.stderr).toMatch(/unknown mode\(s\) "dropclass-alpha7": the main job's modes are baseline, dropclass, weighted-ce, dropclass\+weighted-ce, focal, ohem, dropclass-alpha0, dropclass-alpha1, dropclass-alpha4\.2 \(.*recipes\/main-job\.json\)/);
  }, 400_000);
});
