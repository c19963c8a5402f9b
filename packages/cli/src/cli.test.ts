import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const bin = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/bin/dropclass.js');
const torchImportable = existsSync('/usr/bin/python3') && spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the command line as a user would, in `cwd`, with `env` added. */
function dropclass(args: string[], options: { cwd: string; env?: Record<string, string>; onStart?: (child: ChildProcess) => void }): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: options.cwd, env: { ...process.env, DROPCLASS_BACKEND: 'wasm', ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => done({ code, signal, stdout, stderr }));
    options.onStart?.(child);
  });
}

const tinyConfig = (root: string, extra: Record<string, unknown> = {}) => ({
  backbone: { kind: 'unet', options: { base: 2, depth: 1 } },
  dataset: { kind: 'folder', root, evalSplits: ['val', 'val-shifted'], generate: { seed: 0, size: 16, train: 8, val: 3, valShifted: 3 } },
  crop: [16, 16],
  batchSize: 2,
  iterations: 6,
  checkpointEvery: 2,
  learningRate: 0.02,
  ...extra,
});

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
    const report = JSON.parse(evaluated.stdout);
    expect(report.rows.map((r: { name: string }) => r.name)).toEqual(['road', 'grass', 'water', 'sand', 'car', 'cow', 'boat', 'crab']);
    expect(Object.keys(report.groups)).toEqual(['frequent', 'under-represented']);

    const image = join(dir, 'data/val/images/val-00000.png');
    const predicted = await dropclass(['predict', '--model', 'runs/tiny', '--input', image, '--out', 'pred'], { cwd: dir });
    expect(predicted.code).toBe(0);
    const mask = await sharp(join(dir, 'pred/val-00000_mask.png')).metadata();
    expect([mask.width, mask.height]).toEqual([16, 16]);
    expect(existsSync(join(dir, 'pred/val-00000_overlay.png'))).toBe(true);

    expect((await dropclass(['train', '--config', baseline, '--out', 'runs/baseline'], { cwd: dir })).code).toBe(0);
    const compared = await dropclass(['compare', 'runs/baseline', 'runs/tiny'], { cwd: dir });
    expect(compared.code).toBe(0);
    expect(compared.stdout).toMatch(/val-shifted:\n/);
    expect(compared.stdout).toMatch(/mean \(under-represented\)/);
    for (const f of ['comparison.md', 'comparison.json', 'iou-val.png', 'iou-val-shifted.png']) expect(existsSync(join(dir, 'runs/tiny/compare', f)), f).toBe(true);
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
    const evaluated = await dropclass(['eval', '--model', 'runs/killed', '--split', 'val'], { cwd: dir });
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
    const evaluated = await dropclass(['eval', '--model', 'runs/nan', '--split', 'val'], { cwd: dir });
    expect(evaluated.code).toBe(0);
  });

  it('refuses bad configs before training, naming the key', async () => {
    const cases: [object, RegExp][] = [
      [{ ...tinyConfig('data'), batchsize: 4 }, /unknown key "batchsize": remove it or check its spelling/],
      [{ ...tinyConfig('data'), batchSize: 0 }, /batchSize: Too small/i],
      [{ ...tinyConfig('data'), backbone: { kind: 'unet', options: { depht: 2 } } }, /unknown key "backbone\.options\.depht"/],
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

  it('the main job runs in quick mode and writes the comparison report', async () => {
    const run = await dropclass(['main', '--quick', '--out', 'runs/main', '--data', 'main-data'], { cwd: dir });
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/\| car +\| object +\| road/);
    expect(run.stderr).toMatch(/DropClass - baseline, IoU points/);
    const report = await readFile(join(dir, 'runs/main/report.md'), 'utf8');
    expect(report).toMatch(/\| val-shifted \| .* \|/);
    for (const f of ['seed-0/iou-val.png', 'seed-0/baseline/dependency.png', 'seed-0/dropclass/dependency.png']) expect(existsSync(join(dir, 'runs/main', f)), f).toBe(true);
  });

  it('the benchmark prints its figures, also as JSON', async () => {
    const run = await dropclass(['bench', '--quick', '--json', '--no-deeplab', '--profile', '--threads', '2'], { cwd: dir });
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.backend).toBe('wasm');
    expect(report.threads).toBe(2);
    const profile = report.unet.dropclass.profile;
    expect(profile.kernels.map((k: { kernel: string }) => k.kernel)).toEqual(expect.arrayContaining(['FusedConv2D', 'Conv2DBackpropFilter']));
    const kernelMs = profile.kernels.reduce((sum: number, k: { selfMs: number }) => sum + k.selfMs, 0);
    expect(kernelMs + profile.outsideKernelsMs).toBeCloseTo(profile.wallMs, 6);
    for (const mode of ['baseline', 'dropclass']) {
      expect(report.unet[mode].medianMs).toBeGreaterThan(0);
      expect(report.unet[mode].tensorsAfter).toBe(report.unet[mode].tensorsBefore);
    }
    expect(report.unet.trainableParams.dropclass - report.unet.trainableParams.baseline).toBe(4 * 4 + 4 + 2 * 4);
    // The shipped PyTorch anchor runs by default and builds the same network.
    if (torchImportable) {
      expect(report.torch.params).toBe(report.unet.trainableParams.baseline);
      expect(report.torch.ratioDropclass).toBeGreaterThan(0);
    } else {
      expect(report.torch.error).toMatch(/apt-get install python3-torch/);
    }
    expect(report.peakRssMiB).toBeGreaterThan(0);
  });
});
