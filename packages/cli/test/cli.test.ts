import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { mainJobConfig, mainJobFolders } from '@dropclass/experiments';
import { bin, dropclass, tinyConfig } from './support.js';

const torchImportable = existsSync('/usr/bin/python3') && spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

const lossLines = async (run: string) =>
  (await readFile(join(run, 'metrics.jsonl'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((l) => 'lossCe' in l)
    .map(({ step, lossCe, lossDrop, lossSup, total, droppedClass }) => ({ step, lossCe, lossDrop, lossSup, total, droppedClass }));

async function writeConfig(dir: string, name: string, config: object): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, JSON.stringify(config));
  return file;
}

describe('dropclass command line', () => {
  let dir: string;
  beforeAll(async () => {
    expect(existsSync(bin), `${bin} is missing: build the package first`).toBe(true);
    dir = await mkdtemp(join(tmpdir(), 'dropclass-cli-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('trains, checkpoints, logs the three loss terms and writes the report; eval, predict and compare read the run', async () => {
    const config = await writeConfig(dir, 'tiny.json', tinyConfig('data'));
    const baseline = await writeConfig(dir, 'tiny-baseline.json', tinyConfig('data', { dropclass: false }));
    const run = await dropclass(['train', '--config', config, '--out', 'runs/tiny'], { cwd: dir });
    expect(run.stderr).toMatch(/DropClass unet: [\d,]+ trainable parameters/);
    expect(run.code).toBe(0);
    const runDir = join(dir, 'runs/tiny');
    for (const f of ['config.json', 'metrics.jsonl', 'eval.json', 'report.md', 'loss.png', 'checkpoints/latest.json', 'overlays/val']) expect(existsSync(join(runDir, f)), f).toBe(true);
    const losses = await lossLines(runDir);
    expect(losses.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(losses.every((l) => Number.isFinite(l.lossCe) && Number.isFinite(l.lossDrop) && Number.isFinite(l.lossSup))).toBe(true);
    expect(JSON.parse(await readFile(join(runDir, 'checkpoints/latest.json'), 'utf8')).step).toBe(6);

    const evaluated = await dropclass(['eval', '--model', 'runs/tiny', '--format', 'json', '--split', 'val'], { cwd: dir });
    expect(evaluated.code).toBe(0);
    const report = JSON.parse(evaluated.stdout).splits.val;
    expect(report.rows.map((r: { name: string }) => r.name)).toEqual(['road', 'grass', 'water', 'sand', 'car', 'cow', 'boat', 'crab']);
    expect(Object.keys(report.groups)).toEqual(['frequent', 'under-represented']);

    const image = join(dir, 'data/val/images/val-00000.png');
    const predicted = await dropclass(['predict', '--model', 'runs/tiny', '--input', image, '--out', 'pred'], { cwd: dir });
    expect(predicted.code).toBe(0);
    const mask = await sharp(join(dir, 'pred/val-00000_mask.png')).metadata();
    expect([mask.width, mask.height]).toEqual([16, 16]);
    expect(existsSync(join(dir, 'pred/val-00000_overlay.png'))).toBe(true);

    const exported = await dropclass(['export', '--model', 'runs/tiny', '--quantize', 'float16'], { cwd: dir });
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/weights: float32 [\d.]+ KiB -> float16 [\d.]+ KiB \(50\.0% smaller\)/);
    const [, trainedIoU, float32IoU] = exported.stdout.match(/mIoU on val: training model ([\d.]+)%, float32 export ([\d.]+)%/) ?? [];
    expect(float32IoU).toBe(trainedIoU);
    expect(exported.stdout).toMatch(/mIoU on val: float16 export [\d.]+% \(change [-+\d.]+ points from float32\)/);
    const modelJson = JSON.parse(await readFile(join(dir, 'runs/tiny/export/model.json'), 'utf8'));
    expect(modelJson.userDefinedMetadata.dropclass.classNames).toEqual(report.rows.map((r: { name: string }) => r.name));
    const classNames = modelJson.modelTopology.config.layers.map((l: { class_name: string }) => l.class_name);
    expect(classNames.filter((c: string) => /DropClass/.test(c))).toEqual([]);
    const overModel = await dropclass(['export', '--model', 'runs/tiny', '--out', 'runs/tiny/checkpoints/step-0000006'], { cwd: dir });
    expect(overModel.code).toBe(1);
    expect(overModel.stderr).toMatch(/holds a saved training model \(dropclass\.json\); give another directory/);

    expect((await dropclass(['train', '--config', baseline, '--out', 'runs/baseline'], { cwd: dir })).code).toBe(0);
    const compared = await dropclass(['compare', 'runs/baseline', 'runs/tiny'], { cwd: dir });
    expect(compared.code).toBe(0);
    expect(compared.stdout).toMatch(/val-shifted:\n/);
    expect(compared.stdout).toMatch(/mean \(under-represented\)/);
    for (const f of ['comparison.md', 'comparison.json', 'iou-val.png', 'iou-val-shifted.png']) expect(existsSync(join(dir, 'runs/tiny/compare', f)), f).toBe(true);
    const comparison = await readFile(join(dir, 'runs/tiny/compare/comparison.md'), 'utf8');
    expect(comparison).toMatch(/### val-shifted, with 95% intervals/);
    expect(comparison).toMatch(/\| mIoU +\| +-?[\d.]+ \[-?[\d.]+, -?[\d.]+\] \| +-?[\d.]+ \[-?[\d.]+, -?[\d.]+\] \| +-?[\d.]+ \[-?[\d.]+, -?[\d.]+\]( \*)? \|/);
    expect(await readFile(join(runDir, 'report.md'), 'utf8')).toMatch(/\| class +\| +IoU \[95% CI\] \|[\s\S]*Percentile bootstrap over the 3 images/);
  });

  it('Ctrl-C saves a checkpoint and exits; --resume continues with exactly the losses of an uninterrupted run', async () => {
    const long = { ...tinyConfig('data'), iterations: 400, checkpointEvery: 1000 };
    const config = await writeConfig(dir, 'long.json', long);
    const whole = await dropclass(['train', '--config', config, '--out', 'runs/whole'], { cwd: dir });
    expect(whole.code).toBe(0);
    const interrupted = await dropclass(['train', '--config', config, '--out', 'runs/interrupted'], {
      cwd: dir,
      onStart: (child) => {
        const poll = setInterval(() => {
          if (existsSync(join(dir, 'runs/interrupted/metrics.jsonl'))) {
            clearInterval(poll);
            child.kill('SIGINT');
          }
        }, 20);
      },
    });
    expect(interrupted.stderr).toMatch(/interrupted: checkpoint saved at step \d+; continue with --resume/);
    expect(interrupted.code).toBe(130);
    const stoppedAt = JSON.parse(await readFile(join(dir, 'runs/interrupted/checkpoints/latest.json'), 'utf8')).step;
    expect(stoppedAt).toBeLessThan(400);
    const resumed = await dropclass(['train', '--config', config, '--out', 'runs/interrupted', '--resume'], { cwd: dir });
    expect(resumed.stderr).toMatch(new RegExp(`resuming .* from step ${stoppedAt}`));
    expect(resumed.code).toBe(0);
    expect(await lossLines(join(dir, 'runs/interrupted'))).toEqual(await lossLines(join(dir, 'runs/whole')));
  });

  it('a kill during training leaves the last complete checkpoint loadable and resumable', async () => {
    const config = await writeConfig(dir, 'killed.json', { ...tinyConfig('data'), iterations: 400, checkpointEvery: 3 });
    const killed = await dropclass(['train', '--config', config, '--out', 'runs/killed'], {
      cwd: dir,
      onStart: (child) => {
        const poll = setInterval(() => {
          if (existsSync(join(dir, 'runs/killed/checkpoints/latest.json'))) {
            clearInterval(poll);
            setTimeout(() => child.kill('SIGKILL'), 37);
          }
        }, 5);
      },
    });
    expect(killed.signal).toBe('SIGKILL');
    // A checkpoint directory written only in part (as a kill mid-save leaves it) is never the one loaded.
    await mkdir(join(dir, 'runs/killed/checkpoints/step-9999999'), { recursive: true });
    await writeFile(join(dir, 'runs/killed/checkpoints/step-9999999/model.json'), '{"trunc');
    // an unfinished run: evaluated only when asked to be
    const evaluated = await dropclass(['eval', '--model', 'runs/killed', '--split', 'val', '--allow-partial'], { cwd: dir });
    expect(evaluated.stdout).toMatch(/mIoU/);
    expect(evaluated.code).toBe(0);
    const resumed = await dropclass(['train', '--config', config, '--out', 'runs/killed', '--resume'], { cwd: dir });
    expect(resumed.code).toBe(0);
    expect(JSON.parse(await readFile(join(dir, 'runs/killed/checkpoints/latest.json'), 'utf8')).step).toBe(400);
  });

  it('stops on a NaN loss with a clear error and keeps the last good checkpoint', async () => {
    const config = await writeConfig(dir, 'nan.json', tinyConfig('data'));
    const run = await dropclass(['train', '--config', config, '--out', 'runs/nan'], { cwd: dir, env: { DROPCLASS_INJECT_NAN_AT: '3' } });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/the loss became NaN at step 3 .* the weights were not updated/);
    expect(run.stderr).toMatch(/the last good checkpoint is .*step-0000002 \(step 2\)/);
    const evaluated = await dropclass(['eval', '--model', 'runs/nan', '--split', 'val', '--allow-partial'], { cwd: dir });
    expect(evaluated.stdout).toMatch(/^model: runs\/nan, step 2 of 6 \(unfinished run\)/);
    expect(evaluated.code).toBe(0);
  });

  it('resumes or reuses a run directory only for the same config; --fresh starts again', async () => {
    const first = await writeConfig(dir, 'hash-a.json', { ...tinyConfig('data'), iterations: 2 });
    const second = await writeConfig(dir, 'hash-b.json', { ...tinyConfig('data'), iterations: 3, learningRate: 0.03 });
    expect((await dropclass(['train', '--config', first, '--out', 'runs/hash'], { cwd: dir })).code).toBe(0);
    const hash = (await readFile(join(dir, 'runs/hash/config-hash'), 'utf8')).trim();
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    const same = await dropclass(['train', '--config', first, '--out', 'runs/hash', '--resume'], { cwd: dir });
    expect(same.code).toBe(0);
    expect(same.stderr).toMatch(/is a finished run of this config \(step 2\); nothing to do/);
    const other = await dropclass(['train', '--config', second, '--out', 'runs/hash', '--resume'], { cwd: dir });
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/runs\/hash holds a finished run of another config .*differing: iterations, learningRate\. It is not reused: pass --fresh to discard it/);
    const fresh = await dropclass(['train', '--config', second, '--out', 'runs/hash', '--fresh'], { cwd: dir });
    expect(fresh.code).toBe(0);
    expect(JSON.parse(await readFile(join(dir, 'runs/hash/eval.json'), 'utf8')).step).toBe(3);
    expect((await readFile(join(dir, 'runs/hash/config-hash'), 'utf8')).trim()).not.toBe(hash);
  });

  it('refuses bad configs before training, naming the key', async () => {
    const cases: [object, RegExp][] = [
      [{ ...tinyConfig('data'), batchsize: 4 }, /unknown key "batchsize": remove it or check its spelling/],
      [{ ...tinyConfig('data'), batchSize: 0 }, /batchSize: Too small/i],
      [{ ...tinyConfig('data'), backbone: { kind: 'unet', options: { depht: 2 } } }, /backbone\.options\.depht: unknown option: remove it or check its spelling/],
      [{ ...tinyConfig('data'), backbone: { kind: 'unett' } }, /backbone\.kind "unett": no backbone "unett" is registered \(known: deeplabv3, unet\)/],
      [{ ...tinyConfig('data'), backbone: { kind: 'fcn', package: '@acme/backbone-fcn' } }, /backbone\.package: backbone package @acme\/backbone-fcn is not installed .*: run npm install @acme\/backbone-fcn/],
      [{ ...tinyConfig('data'), inference: { window: [16, 16], stride: [32, 8] } }, /inference\.stride: stride must be at most the window/],
      [{ ...tinyConfig('data'), inference: { window: [15, 16] } }, /bad-\d+\.json: inference: window 15x16 cannot be taken by the unet backbone: sides must be multiples of 2 and at least 2; use 16x16/],
      [{ ...tinyConfig('nowhere'), dataset: { kind: 'folder', root: 'nowhere' } }, /dataset\.root .*nowhere does not exist/],
      [{ ...tinyConfig('data'), scale: [2, 1] }, /scale must be \[min, max\]/],
    ];
    for (const [i, [config, message]] of cases.entries()) {
      const file = await writeConfig(dir, `bad-${i}.json`, config);
      const run = await dropclass(['train', '--config', file, '--out', `runs/bad-${i}`], { cwd: dir });
      expect(run.stderr).toMatch(message);
      expect(run.code).toBe(1);
      expect(existsSync(join(dir, `runs/bad-${i}`))).toBe(false);
    }
    const notJson = join(dir, 'broken.json');
    await writeFile(notJson, '{ nope');
    expect((await dropclass(['train', '--config', notJson], { cwd: dir })).stderr).toMatch(/broken\.json: not valid JSON/);
    const help = await dropclass(['train', '--help'], { cwd: dir });
    expect(help.stdout).toMatch(/--resume/);
  });

  it('a model whose backbone package is gone still loads when tfjs knows its layers, with a warning naming the package', async () => {
    const config = await writeConfig(dir, 'gone.json', { ...tinyConfig('data'), iterations: 2 });
    const run = await dropclass(['train', '--config', config, '--out', 'runs/gone'], { cwd: dir });
    expect(run.code).toBe(0);
    const latest = JSON.parse(await readFile(join(dir, 'runs/gone/checkpoints/latest.json'), 'utf8'));
    const infoFile = join(dir, 'runs/gone/checkpoints', latest.dir, 'dropclass.json');
    const info = JSON.parse(await readFile(infoFile, 'utf8'));
    expect(info.backbone.source).toEqual({ kind: 'unet', package: '@dropclass/backbone-unet', options: { base: 2, depth: 1, upsampling: 'bilinear' } });
    const runConfig = JSON.parse(await readFile(join(dir, 'runs/gone/config.json'), 'utf8'));
    expect(runConfig.backbone).toEqual({ kind: 'unet', package: '@dropclass/backbone-unet', options: { base: 2, depth: 1, upsampling: 'bilinear' } });
    // as if the run had been trained with a plugin that registers "unet" and is not installed here
    info.backbone.source.package = '@acme/gone';
    await writeFile(infoFile, JSON.stringify(info));
    await writeFile(join(dir, 'runs/gone/config.json'), JSON.stringify({ ...runConfig, backbone: { ...runConfig.backbone, package: '@acme/gone' } }));
    const evaluated = await dropclass(['eval', '--model', 'runs/gone', '--split', 'val'], { cwd: dir });
    expect(evaluated.stderr).toMatch(/warning: .*dropclass\.json: this model needs the unet backbone from @acme\/gone\. backbone package @acme\/gone is not installed .*: run npm install @acme\/gone/);
    expect(evaluated.stdout).toMatch(/mIoU/);
    expect(evaluated.code).toBe(0);
  });

  it('the main job runs in quick mode in its own folders and writes the report with intervals', async () => {
    const run = await dropclass(['main', '--quick', '--resamples', '200'], { cwd: dir });
    expect(run.stderr).toMatch(/\| car +\| object +\| road/);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/Differences from baseline \(IoU %, 95% intervals; \* beyond the noise; 1 seed\(s\), 4 steps, scratch regime\):/);
    expect(run.stderr).toMatch(/What this run can and cannot show:\n- /);
    // Quick data and runs never land where the full job looks.
    for (const f of ['data/synthetic-quick/stats.json', 'runs/main-quick/report.md']) expect(existsSync(join(dir, f)), f).toBe(true);
    for (const f of ['data/synthetic', 'runs/main']) expect(existsSync(join(dir, f)), f).toBe(false);
    const report = await readFile(join(dir, 'runs/main-quick/report.md'), 'utf8');
    expect(report).toMatch(/\| mean \(under-represented\) +\| +\| +\| +\| +-?[\d.]+ \[-?[\d.]+, -?[\d.]+\] \|/);
    expect(report).toMatch(/## Reading\n\nTODO\(reader\)/);
    for (const f of ['iou-ci-val.png', 'delta-ci-val-shifted.png', 'seed-0/vs-dropclass/iou-val.png', 'seed-0/baseline/dependency.png', 'seed-0/dropclass/dependency.png', 'seed-0/baseline/config-hash']) {
      expect(existsSync(join(dir, 'runs/main-quick', f)), f).toBe(true);
    }
    // The same intervention in both models.
    const dep = (mode: string) => JSON.parse(readFileSync(join(dir, 'runs/main-quick/seed-0', mode, 'dependency.json'), 'utf8'));
    expect(dep('baseline').intervention).toBe(dep('dropclass').intervention);
    expect(dep('baseline').intervention).toMatch(/the 2 of 16 feature-map channels with the largest relu\(W\[:, z\]\) are zeroed before the head \(all 8 val images\)/);
    const evalFile = JSON.parse(readFileSync(join(dir, 'runs/main-quick/seed-0/baseline/eval.json'), 'utf8'));
    expect(evalFile.perImage.val.images).toHaveLength(8);

    // Run again: the finished runs are reused; another --iterations never reuses them.
    const again = await dropclass(['main', '--quick', '--resamples', '50'], { cwd: dir });
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/seed-0\/baseline is a finished run of this config; reusing it/);
    expect(again.stderr).not.toMatch(/== seed 0/);
    const changed = await dropclass(['main', '--quick', '--iterations', '6'], { cwd: dir });
    expect(changed.code).toBe(1);
    expect(changed.stderr).toMatch(/seed-0\/baseline holds a finished run of another config .*differing: iterations\. It is not reused: run the job again with --fresh/);
    const fresh = await dropclass(['main', '--quick', '--iterations', '6', '--fresh', '--resamples', '50'], { cwd: dir });
    expect(fresh.code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'runs/main-quick/seed-0/dropclass/eval.json'), 'utf8')).step).toBe(6);

    // Data generated with other options is not reused either.
    const otherData = await writeConfig(dir, 'other-data.json', tinyConfig(join(dir, 'data/synthetic-quick')));
    const refused = await dropclass(['train', '--config', otherData, '--out', 'runs/other-data'], { cwd: dir });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/synthetic-quick\/stats\.json: the synthetic benchmark there was generated with counts\.train 24.*size 32; expected .*size 16\. Remove .* to have it written again/);
   }, 400_000);

  it('the full main job uses the full data and runs; its U-Net gives the head 8 channels per class', () => {
    const config = mainJobConfig({ quick: false }, 0, true);
    expect(config.dataset.root).toBe(resolve('data/synthetic'));
    expect(mainJobFolders({ quick: false }).out).toBe('runs/main');
    expect(mainJobFolders({ quick: true })).toEqual({ out: 'runs/main-quick', data: 'data/synthetic-quick' });
    expect(config.backbone).toEqual({ kind: 'unet', package: '@dropclass/backbone-unet', options: { base: 8, depth: 3, upsampling: 'bilinear', featureChannels: 64 } });
    expect(config.dataset.generate).toEqual({ seed: 0, size: 64, train: 600, val: 3200, valShifted: 3200 });
  });

  it('several seeds run as parallel processes and the results page is written with its charts beside it', async () => {
    const run = await dropclass(['main', '--quick', '--seeds', '2', '--jobs', '2', '--out', 'runs/exp', '--results', 'docs/results.md', '--resamples', '100'], { cwd: dir });
    expect(run.stderr).toMatch(/training 4 run\(s\), 2 at a time, 1 thread\(s\) each/);
    expect(run.code).toBe(0);
    for (const seed of [0, 1]) for (const mode of ['baseline', 'dropclass']) expect(readFileSync(join(dir, `runs/exp/seed-${seed}/${mode}/train.log`), 'utf8')).toMatch(/backend wasm \(1 thread/);
    const page = await readFile(join(dir, 'docs/results.md'), 'utf8');
    expect(page).toMatch(/- Command: `dropclass main --quick --seeds 2 --jobs 2 --out runs\/exp --results docs\/results\.md --resamples 100`/);
    expect(page).toMatch(/- Machine: .+, \d+ cores; backend wasm (with native kernels \((avx512f\+fma|avx2\+fma|generic)\)|without native kernels \(.+\)); 2 runs at a time, 1 thread\(s\) each/);
    expect(page).toMatch(/- Wall time of the command: [\d.]+ min/);
    expect(page).toMatch(/\| delta sd over seeds \|/);
    expect(page.match(/TODO/g)).toHaveLength(1);
    const images = [...page.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]);
    expect(images.length).toBeGreaterThanOrEqual(4);
    for (const image of images) expect(existsSync(join(dir, 'docs', image)), image).toBe(true);
    for (const link of [...page.matchAll(/\]\(([^)]+dependency\.png)\)/g)].map((m) => m[1])) expect(existsSync(join(dir, 'docs', link)), link).toBe(true);
   }, 400_000);

  it('the benchmark prints its figures, also as JSON', async () => {
    const run = await dropclass(['bench', '--quick', '--json', '--no-deeplab', '--profile', '--threads', '2'], { cwd: dir });
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.backend).toBe('wasm');
    // the threads asked for go to the native kernels where they run, wasm's own kernels then on 1
    if (report.native.active) expect([report.threads, report.native.threads]).toEqual([1, 2]);
    else expect(report.threads).toBe(2);
    const profile = report.unet.dropclass.profile;
    expect(profile.kernels.map((k: { kernel: string }) => k.kernel)).toEqual(expect.arrayContaining(['FusedConv2D', 'Conv2DBackpropFilter']));
    const kernelMs = profile.kernels.reduce((sum: number, k: { selfMs: number }) => sum + k.selfMs, 0);
    expect(kernelMs + profile.outsideKernelsMs).toBeCloseTo(profile.wallMs, 6);
    for (const mode of ['baseline', 'dropclass']) {
      expect(report.unet[mode].medianMs).toBeGreaterThan(0);
      expect(report.unet[mode].tensorsAfter).toBe(report.unet[mode].tensorsBefore);
    }
    expect(report.unet.trainableParams.dropclass - report.unet.trainableParams.baseline).toBe(4 * 4 + 4 + 2 * 4);
    // The overhead pair by pair: percentiles in order, all finite.
    const paired = report.unet.dropclassOverheadPaired;
    expect([paired.lowPercent, paired.medianPercent, paired.highPercent].every(Number.isFinite)).toBe(true);
    expect(paired.lowPercent).toBeLessThanOrEqual(paired.medianPercent);
    expect(paired.medianPercent).toBeLessThanOrEqual(paired.highPercent);
    // The shipped PyTorch anchor runs by default and builds the same network.
    if (torchImportable) {
      expect(report.torch.params).toBe(report.unet.trainableParams.baseline);
      expect(report.torch.ratioDropclass).toBeGreaterThan(0);
    } else {
      expect(report.torch.error).toMatch(/apt-get install python3-torch/);
    }
    expect(report.peakRssMiB).toBeGreaterThan(0);
  });

  it('the benchmark of the main job\'s network: a widened feature map, its PyTorch twin as wide, the profile\'s calls, bytes and reads', async () => {
    const run = await dropclass(['bench', '--quick', '--json', '--config', 'main-job', '--profile', '--threads', '2'], { cwd: dir });
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.config).toBe('main-job');
    expect(report.deeplab).toBeUndefined();
    // The quick main-job configuration widens base 4 to 16 feature channels: the head's selection layer is 16x16.
    expect(report.unet.trainableParams.dropclass - report.unet.trainableParams.baseline).toBe(16 * 16 + 16 + 2 * 16);
    const profile = report.unet.dropclass.profile;
    expect(profile.kernelCalls).toBe(profile.kernels.reduce((n: number, k: { calls: number }) => n + k.calls, 0));
    expect(profile.bytesAllocated).toBeGreaterThan(0);
    // At least the one read of the loss terms per step.
    expect(profile.reads).toBeGreaterThanOrEqual(1);
    for (const mode of ['baseline', 'dropclass']) expect(report.unet[mode].tensorsAfter).toBe(report.unet[mode].tensorsBefore);
    if (torchImportable) expect(report.torch.params).toBe(report.unet.trainableParams.baseline);
  });
});
