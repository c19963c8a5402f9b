import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeImage, writeLabel } from '@dropclass/datasets/testing';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, dropclass as runCli, type Run, tinyConfig } from './support.js';

// Issue 24, "Nothing lost, nothing silent": each finding, tried with the built command line as a user would.

const here = dirname(fileURLToPath(import.meta.url));

let cacheDir = '';

/** The command line, with this file's shared data cache. */
const dropclass = (args: string[], options: { cwd: string; env?: Record<string, string>; onStart?: (child: ChildProcess) => void }): Promise<Run> =>
  runCli(args, { ...options, env: { DROPCLASS_CACHE_DIR: cacheDir, ...options.env } });

/** An error that reached the user as the command's own message: exit 1, one `dropclass:` message, no stack, no backend crash. */
function expectOwnError(run: Run, message: RegExp): void {
  expect(run.stderr).toMatch(message);
  expect(run.stderr).toMatch(/^dropclass: /m);
  expect(run.stderr).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  expect(run.stderr).not.toMatch(/tfjs-backend-wasm|RuntimeError|Aborted/);
  expect(run.code).toBe(1);
}


async function writeConfig(dir: string, name: string, config: object): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, JSON.stringify(config));
  return file;
}

const stripTime = (text: string) => text.replace(/"time":"[^"]*",/g, '');

/** The bytes of every file of the newest checkpoint of a run. */
function checkpointBytes(run: string): Record<string, string> {
  const latest = JSON.parse(readFileSync(join(run, 'checkpoints/latest.json'), 'utf8'));
  const dir = join(run, 'checkpoints', latest.dir);
  return Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f)).toString('base64')]));
}

describe('issue 24: nothing lost, nothing silent', () => {
  let dir: string;
  beforeAll(async () => {
    expect(existsSync(bin), `${bin} is missing: build the package first`).toBe(true);
    dir = await mkdtemp(join(tmpdir(), 'dropclass-reliability-'));
    cacheDir = join(dir, 'cache');
    // one finished run that several tests read; its data is written on the way
    const config = await writeConfig(dir, 'base.json', tinyConfig('data'));
    const run = await dropclass(['train', '--config', config, '--out', 'runs/base'], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('1. --fresh removes only a folder marked as a run; any other folder is refused and left as it was', async () => {
    const config = join(dir, 'base.json');
    await mkdir(join(dir, 'victim/sub'), { recursive: true });
    await writeFile(join(dir, 'victim/a.txt'), 'mine');
    await writeFile(join(dir, 'victim/sub/b.txt'), 'mine too');
    const fresh = await dropclass(['train', '--config', config, '--out', 'victim', '--fresh'], { cwd: dir });
    expectOwnError(fresh, /victim is not a DropClass run \(it has no dropclass-run\.json\) and holds 2 entries: a\.txt, sub; nothing was removed/);
    expect(await readFile(join(dir, 'victim/a.txt'), 'utf8')).toBe('mine');
    expect(await readFile(join(dir, 'victim/sub/b.txt'), 'utf8')).toBe('mine too');
    // Without --fresh, nothing is written into it either.
    const into = await dropclass(['train', '--config', config, '--out', 'victim'], { cwd: dir });
    expectOwnError(into, /victim is not a DropClass run .*nothing was written there/);
    expect(readdirSync(join(dir, 'victim')).sort()).toEqual(['a.txt', 'sub']);
    // The main job's --fresh and its --results charts folder follow the same rule.
    await mkdir(join(dir, 'runs/main-quick/seed-0/baseline'), { recursive: true });
    await writeFile(join(dir, 'runs/main-quick/seed-0/baseline/notes.txt'), 'mine');
    const main = await dropclass(['main', '--quick', '--fresh'], { cwd: dir });
    expectOwnError(main, /seed-0[/\\]baseline is not a DropClass run .*notes\.txt; nothing was removed/);
    expect(existsSync(join(dir, 'runs/main-quick/seed-0/baseline/notes.txt'))).toBe(true);
    // A marked run is removed by --fresh, and trained again.
    const again = await dropclass(['train', '--config', config, '--out', 'runs/base', '--fresh'], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(dir, 'runs/base/dropclass-run.json'), 'utf8')).sessions).toHaveLength(1);
  });

  it('2. bad data is found before step 1: every bad file of every split listed at once, exit 1, no backend crash; skipBad skips and lists', async () => {
    const root = join(dir, 'bad-data');
    await cp(join(dir, 'data'), root, { recursive: true });
    await rm(join(root, 'stats.json'));
    const image = (split: string, i: number) => join(root, split, 'images', `${split}-${String(i).padStart(5, '0')}.png`);
    const mask = (split: string, i: number) => join(root, split, 'masks', `${split}-${String(i).padStart(5, '0')}.png`);
    await writeLabel(mask('train', 1), 15, 16, () => 0); // a label of the wrong size
    await truncate(image('train', 2), 60); // a truncated image
    await truncate(mask('train', 3), 50); // a truncated label
    await writeLabel(mask('train', 7), 16, 16, () => 77); // label value 77 in an 8-class dataset
    await sharp(Buffer.alloc(16 * 16 * 3, 40), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(mask('val', 0)); // an RGB label
    await mkdir(join(root, 'empty/images'), { recursive: true });
    await mkdir(join(root, 'empty/masks'), { recursive: true });
    const noGenerate = { ...tinyConfig('bad-data'), dataset: { kind: 'folder', root: 'bad-data', evalSplits: ['val', 'missing', 'empty'] } };
    const config = await writeConfig(dir, 'bad-data.json', noGenerate);
    const run = await dropclass(['train', '--config', config, '--out', 'runs/bad-data'], { cwd: dir });
    expectOwnError(run, /bad-data: 7 problems in the data, found before training/);
    for (const line of [
      /train: .*train-00001\.png: is 15x16; expected the size of its image .*\(16x16\)/,
      /train: .*images[/\\]train-00002\.png: cannot be decoded/,
      /train: .*masks[/\\]train-00003\.png: cannot be decoded as PNG/,
      /train: .*train-00007\.png: has label value 77 at pixel \(0, 0\); expected a class id in 0\.\.7 or 255/,
      /val: .*val-00000\.png: is a 8-bit 3-channel PNG; expected an 8-bit single-channel or palette PNG/,
      /missing: .*missing[/\\]images: does not exist or is not a directory/,
      /empty: holds no samples/,
    ]) {
      expect(run.stderr).toMatch(line);
    }
    expect(run.stderr).not.toMatch(/train \d+\/\d+/);
    expect(existsSync(join(dir, 'runs/bad-data'))).toBe(false);

    // dataset.skipBad: the bad samples are left out and listed; a split-level problem still stops the run.
    const skipping = await writeConfig(dir, 'skip-bad.json', { ...noGenerate, dataset: { ...noGenerate.dataset, evalSplits: ['val'], skipBad: true } });
    const skipped = await dropclass(['train', '--config', skipping, '--out', 'runs/skip-bad'], { cwd: dir });
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stderr.match(/^skipped \(dataset\.skipBad\): /gm)).toHaveLength(5);
    expect(skipped.stderr).toMatch(/checked 11 samples of train, val in [\d.]+ s \(\d+ read, \d+ unchanged since the last check\)/);
    expect(JSON.parse(await readFile(join(dir, 'runs/skip-bad/eval.json'), 'utf8')).perImage.val.images).toHaveLength(2);
    // The check's verdicts are cached: a second run reads no sample.
    const second = await dropclass(['train', '--config', skipping, '--out', 'runs/skip-bad-2', '--set', 'iterations=2'], { cwd: dir });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/checked 11 samples of train, val in [\d.]+ s \(0 read, 11 unchanged since the last check\)/);
  });

  it('2. a file that goes bad after the check, mid-run, still ends in the command\'s own message with exit 1', async () => {
    const root = join(dir, 'rotting');
    await cp(join(dir, 'data'), root, { recursive: true });
    await rm(join(root, 'stats.json'));
    const config = await writeConfig(dir, 'rotting.json', { ...tinyConfig('rotting'), dataset: { kind: 'folder', root: 'rotting', evalSplits: ['val'] }, iterations: 400, checkpointEvery: 1000 });
    const run = await dropclass(['train', '--config', config, '--out', 'runs/rotting'], {
      cwd: dir,
      onStart: (child) => {
        let seen = '';
        child.stderr!.on('data', async (d) => {
          if (seen.includes('checked')) return;
          seen += d;
          if (!seen.includes('checked')) return;
          for (const f of readdirSync(join(root, 'train/images'))) await truncate(join(root, 'train/images', f), 40);
        });
      },
    });
    expectOwnError(run, /train-000\d\d\.png: cannot be decoded/);
  });

  it('3. a run killed during its final evaluation is "trained": --resume evaluates it without an extra step, bit-identical to a clean run; metrics.jsonl is cut back to the checkpoint', async () => {
    const config = join(dir, 'base.json');
    const killed = await dropclass(['train', '--config', config, '--out', 'runs/killed-eval'], { cwd: dir, env: { DROPCLASS_KILL_AT: 'evaluated:1' } });
    expect(killed.signal).toBe('SIGKILL');
    expect(existsSync(join(dir, 'runs/killed-eval/eval.json'))).toBe(false);
    const resumed = await dropclass(['train', '--config', config, '--out', 'runs/killed-eval', '--resume'], { cwd: dir });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/runs[/\\]killed-eval is trained \(step 6 of 6\); evaluating it/);
    expect(resumed.stderr).not.toMatch(/train 7\/6/);
    expect(readdirSync(join(dir, 'runs/killed-eval/checkpoints')).filter((n) => n.startsWith('step-'))).not.toContain('step-0000007');
    expect(checkpointBytes(join(dir, 'runs/killed-eval'))).toEqual(checkpointBytes(join(dir, 'runs/base')));
    const evalOf = (run: string) => ({ ...JSON.parse(readFileSync(join(dir, run, 'eval.json'), 'utf8')), name: undefined });
    expect(evalOf('runs/killed-eval')).toEqual(evalOf('runs/base'));
    // Steps logged after the last checkpoint are cut on resume: no step listed twice.
    const stopped = await dropclass(['train', '--config', config, '--out', 'runs/cut'], { cwd: dir, env: { DROPCLASS_KILL_AT: 'metrics:5' } });
    expect(stopped.signal).toBe('SIGKILL');
    const logged = (await readFile(join(dir, 'runs/cut/metrics.jsonl'), 'utf8')).trim().split('\n').length;
    expect(logged).toBe(5);
    const cut = await dropclass(['train', '--config', config, '--out', 'runs/cut', '--resume'], { cwd: dir });
    expect(cut.code, cut.stderr).toBe(0);
    expect(cut.stderr).toMatch(/metrics\.jsonl: 1 line\(s\) after step 4 removed; those steps are taken again/);
    expect(stripTime(await readFile(join(dir, 'runs/cut/metrics.jsonl'), 'utf8'))).toBe(stripTime(await readFile(join(dir, 'runs/base/metrics.jsonl'), 'utf8')));
  });

  it('4. one process at a time trains in a run folder: the second is refused with the holder named; a stale lock is named and taken over', async () => {
    const config = await writeConfig(dir, 'long.json', { ...tinyConfig('data'), iterations: 400, checkpointEvery: 1000 });
    let second: Promise<Run> | undefined;
    const first = await dropclass(['train', '--config', config, '--out', 'runs/locked'], {
      cwd: dir,
      onStart: (child) => {
        const poll = setInterval(() => {
          if (!existsSync(join(dir, 'runs/locked/metrics.jsonl'))) return;
          clearInterval(poll);
          second = dropclass(['train', '--config', config, '--out', 'runs/locked', '--resume'], { cwd: dir }).then((r) => {
            child.kill('SIGINT');
            return r;
          });
        }, 20);
      },
    });
    const refused = await second!;
    expectOwnError(refused, new RegExp(`runs[/\\\\]locked is in use by process \\d+ on ${hostname()} \\(dropclass train --out runs[/\\\\]locked, since [^)]+\\); dropclass train --resume --out runs[/\\\\]locked was refused`));
    expect(first.code).toBe(130);
    expect(existsSync(join(dir, 'runs/locked/dropclass.lock'))).toBe(false);
    // A process killed outright leaves its lock: the next one names it as stale and takes it over.
    const killed = await dropclass(['train', '--config', config, '--out', 'runs/locked', '--resume'], { cwd: dir, env: { DROPCLASS_KILL_AT: 'step:3' } });
    expect(killed.signal).toBe('SIGKILL');
    const holder = JSON.parse(await readFile(join(dir, 'runs/locked/dropclass.lock'), 'utf8'));
    expect(holder.host).toBe(hostname());
    const after = await dropclass(['train', '--config', config, '--out', 'runs/locked', '--resume', '--set', 'iterations=400'], { cwd: dir, env: { DROPCLASS_KILL_AT: 'step:1' } });
    expect(after.stderr).toMatch(new RegExp(`dropclass\\.lock: a stale lock of process ${holder.pid} on ${hostname()} \\(.*\\), which is no longer running; taken over`));
  });

  it('5. export, eval and predict refuse an unfinished run unless --allow-partial, and their output records the step', async () => {
    const config = join(dir, 'base.json');
    const stopped = await dropclass(['train', '--config', config, '--out', 'runs/partial'], { cwd: dir, env: { DROPCLASS_KILL_AT: 'pruned:2' } });
    expect(stopped.signal).toBe('SIGKILL');
    const image = join(dir, 'data/val/images/val-00000.png');
    for (const [args, verb] of [
      [['export', '--model', 'runs/partial', '--no-eval'], 'export'],
      [['eval', '--model', 'runs/partial', '--split', 'val'], 'evaluate'],
      [['predict', '--model', 'runs/partial', '--input', image, '--out', 'pred-partial'], 'predict with'],
    ] as [string[], string][]) {
      const run = await dropclass(args, { cwd: dir });
      expectOwnError(run, new RegExp(`runs[/\\\\]partial is an unfinished run: its newest checkpoint \\(.*step-0000004\\) is at step 4 of 6\\. Finish it \\(dropclass train .* --resume\\), or pass --allow-partial to ${verb} the model of step 4 as it is`));
    }
    expect(existsSync(join(dir, 'runs/partial/export'))).toBe(false);
    expect(existsSync(join(dir, 'pred-partial'))).toBe(false);
    const exported = await dropclass(['export', '--model', 'runs/partial', '--no-eval', '--allow-partial'], { cwd: dir });
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/exported from runs[/\\]partial, step 4 of 6 \(unfinished run\)/);
    expect(JSON.parse(await readFile(join(dir, 'runs/partial/export/model.json'), 'utf8')).userDefinedMetadata.dropclass.step).toBe(4);
    const evaluated = await dropclass(['eval', '--model', 'runs/partial', '--split', 'val', '--allow-partial'], { cwd: dir });
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(evaluated.stdout).toMatch(/^model: runs[/\\]partial, step 4 of 6 \(unfinished run\)/);
    const predicted = await dropclass(['predict', '--model', 'runs/partial', '--input', image, '--out', 'pred-partial', '--allow-partial'], { cwd: dir });
    expect(predicted.code, predicted.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(dir, 'pred-partial/predictions.json'), 'utf8')).model).toEqual({ path: 'runs/partial', step: 4, iterations: 6, partial: true });
    // A finished run needs no flag.
    const finished = await dropclass(['export', '--model', 'runs/base', '--no-eval', '--out', 'export-base'], { cwd: dir });
    expect(finished.code, finished.stderr).toBe(0);
    expect(finished.stdout).toMatch(/exported from runs[/\\]base, step 6 of 6\n/);
  });

  it('6. eval checks the dataset\'s class count and names against the model before predicting, naming each side', async () => {
    const ten = join(dir, 'ten-classes');
    const renamed = join(dir, 'renamed-classes');
    for (const [root, names] of [
      [ten, ['road', 'grass', 'water', 'sand', 'car', 'cow', 'boat', 'crab', 'tree', 'sky']],
      [renamed, ['sky', 'grass', 'water', 'sand', 'car', 'cow', 'boat', 'crab']],
    ] as [string, string[]][]) {
      await mkdir(root, { recursive: true });
      await writeFile(join(root, 'classes.json'), JSON.stringify(names));
      await writeImage(join(root, 'val/images/a.png'), 16, 16, () => [10, 20, 30]);
      await writeLabel(join(root, 'val/masks/a.png'), 16, 16, () => 0);
    }
    const count = await dropclass(['eval', '--model', 'runs/base', '--kind', 'folder', '--root', ten, '--split', 'val'], { cwd: dir });
    expectOwnError(count, /the model \(runs[/\\]base\) has 8 classes \(road, grass, water, sand, car, cow, boat, crab\) but the folder dataset at .*ten-classes \(split val\) has 10 \(road, .*, tree, sky\)/);
    expect(count.stderr).not.toMatch(/evaluating/);
    const names = await dropclass(['eval', '--model', 'runs/base', '--kind', 'folder', '--root', renamed, '--split', 'val'], { cwd: dir });
    expectOwnError(names, /the model \(runs[/\\]base\) and the folder dataset at .*renamed-classes \(split val\) name their classes differently: id 0 is "road" in the model and "sky" in the dataset/);
    // The same classes, a bad file: listed before anything is predicted, with eval's own way to skip it.
    const badFile = await dropclass(['eval', '--model', 'runs/base', '--kind', 'folder', '--root', join(dir, 'bad-data'), '--split', 'val'], { cwd: dir });
    expectOwnError(badFile, /val-00000\.png: is a 8-bit 3-channel PNG[\s\S]*Or pass --skip-bad to leave the bad samples out/);
    expect(badFile.stderr).not.toMatch(/evaluating/);
  });

  it('7. eval --format json prints one JSON document keyed by split, with the model\'s step', async () => {
    const run = await dropclass(['eval', '--model', 'runs/base', '--format', 'json'], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(Object.keys(report.splits)).toEqual(['val', 'val-shifted']);
    expect(report.model).toEqual({ path: 'runs/base', step: 6, iterations: 6, partial: false });
    expect(report.splits.val.rows.map((r: { name: string }) => r.name)).toEqual(['road', 'grass', 'water', 'sand', 'car', 'cow', 'boat', 'crab']);
  });

  it('8. the same seed and config give the same bits with 1 and 2 threads where the native kernels run; each run records its threads and kernels', async () => {
    // Big enough that the reductions the threads could split (filter gradients, sums over rows) have several parts.
    const config = await writeConfig(dir, 'threads.json', {
      ...tinyConfig('data32'),
      backbone: { kind: 'unet', options: { base: 4, depth: 2, featureChannels: 16 } },
      dataset: { kind: 'folder', root: 'data32', evalSplits: ['val'], generate: { seed: 0, size: 32, train: 16, val: 2, valShifted: 2 } },
      crop: [32, 32],
      batchSize: 8,
      iterations: 5,
      checkpointEvery: 5,
      learningRate: 0.05,
    });
    for (const threads of ['1', '2']) {
      const run = await dropclass(['train', '--config', config, '--out', `runs/threads-${threads}`], { cwd: dir, env: { DROPCLASS_THREADS: threads } });
      expect(run.code, run.stderr).toBe(0);
    }
    const sessions = ['1', '2'].map((t) => JSON.parse(readFileSync(join(dir, `runs/threads-${t}/dropclass-run.json`), 'utf8')).sessions[0]);
    if (sessions.every((s) => s.kernels.startsWith('native'))) {
      // the threads go to the native kernels; wasm's own kernels run on 1
      expect(sessions.map((s) => [s.backend, s.threads, s.kernels.replace(/^native \(.+, (\d+ threads?)\)$/, '$1')])).toEqual([
        ['wasm', 1, '1 thread'],
        ['wasm', 1, '2 threads'],
      ]);
      expect(checkpointBytes(join(dir, 'runs/threads-2'))).toEqual(checkpointBytes(join(dir, 'runs/threads-1')));
      expect(stripTime(readFileSync(join(dir, 'runs/threads-2/metrics.jsonl'), 'utf8'))).toBe(stripTime(readFileSync(join(dir, 'runs/threads-1/metrics.jsonl'), 'utf8')));
    } else {
      expect(sessions.map((s) => [s.backend, s.threads, s.kernels])).toEqual([
        ['wasm', 1, 'wasm'],
        ['wasm', 2, 'wasm'],
      ]);
    }
  });

  it('10. predict on a folder with a corrupt image lists it before writing anything; --skip-bad predicts the others', async () => {
    const input = join(dir, 'pictures');
    await cp(join(dir, 'data/val/images'), input, { recursive: true });
    await truncate(join(input, 'val-00001.png'), 50);
    const run = await dropclass(['predict', '--model', 'runs/base', '--input', 'pictures', '--out', 'masks'], { cwd: dir });
    expectOwnError(run, /pictures: 1 of 3 images cannot be read; nothing was predicted:\n {2}.*val-00001\.png: cannot be decoded .*\nReplace or remove them, or pass --skip-bad to predict the others/);
    expect(existsSync(join(dir, 'masks'))).toBe(false);
    const skipped = await dropclass(['predict', '--model', 'runs/base', '--input', 'pictures', '--out', 'masks', '--skip-bad'], { cwd: dir });
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stderr).toMatch(/skipped \(--skip-bad\): .*val-00001\.png: cannot be decoded/);
    expect(readdirSync(join(dir, 'masks')).sort()).toEqual(['predictions.json', 'val-00000_mask.png', 'val-00000_overlay.png', 'val-00002_mask.png', 'val-00002_overlay.png']);
    expect(JSON.parse(await readFile(join(dir, 'masks/predictions.json'), 'utf8')).skipped).toHaveLength(1);
  });

  it('10. a missing key is named with what to give; --version; config --print writes a commented run config that trains, with extends and --set', async () => {
    const { iterations: _, ...noIterations } = tinyConfig('data');
    const missing = await dropclass(['train', '--config', await writeConfig(dir, 'no-iterations.json', noIterations)], { cwd: dir });
    expectOwnError(missing, /no-iterations\.json: invalid run config\n {2}iterations: missing; give the number of training steps, a positive whole number, e\.g\. 1000/);
    expect(missing.stderr).not.toMatch(/received undefined/);

    const version = await dropclass(['--version'], { cwd: dir });
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(JSON.parse(await readFile(resolve(here, '../package.json'), 'utf8')).version);

    const printed = await dropclass(['config', '--print'], { cwd: dir });
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toMatch(/^\/\/ A DropClass run config \(unet backbone\)/);
    expect(printed.stdout).toMatch(/\/\/ training steps; the learning rate and the DropClass schedule run over them\n {2}"iterations": 1000,/);
    expect(printed.stdout).toMatch(/\/\/ "skipBad": true,/);
    // every key has its comment (the backbone's own options are its adapter's)
    const lines = printed.stdout.split('\n');
    const options = [lines.findIndex((l) => /^ {4}"options": \{$/.test(l)), lines.findIndex((l) => /^ {4}\},?$/.test(l))];
    expect(options[1]).toBeGreaterThan(options[0]);
    const keyed = lines.map((l, i) => [l, i] as const).filter(([l, i]) => /^\s*"/.test(l) && (i <= options[0] || i >= options[1]));
    expect(keyed.length).toBeGreaterThan(30);
    for (const [line, i] of keyed) expect(lines[i - 1], line).toMatch(/^\s*\/\/ /);
    await writeFile(join(dir, 'printed.json'), printed.stdout);
    const deeplab = await dropclass(['config', '--print', 'deeplabv3'], { cwd: dir });
    expect(deeplab.stdout).toMatch(/"kind": "deeplabv3"/);
    const unknown = await dropclass(['config', '--print', 'fcn'], { cwd: dir });
    expectOwnError(unknown, /no backbone "fcn" is registered \(known: deeplabv3, unet\)/);

    // extends: a small config on top of the printed one; --set on top of both.
    await mkdir(join(dir, 'configs'), { recursive: true });
    await writeFile(
      join(dir, 'configs/small.json'),
      `// the printed defaults, made tiny\n{ "extends": "../printed.json", "backbone": { "options": { "base": 2, "depth": 1 } },\n  "dataset": { "root": "../data-printed", "generate": { "size": 16, "train": 8, "val": 2, "valShifted": 2 } }, "crop": [16, 16], "batchSize": 2, "iterations": 50, }\n`,
    );
    const trained = await dropclass(['train', '--config', 'configs/small.json', '--set', 'iterations=3', 'dataset.evalSplits=["val"]'], { cwd: dir });
    expect(trained.code, trained.stderr).toBe(0);
    const saved = JSON.parse(await readFile(join(dir, 'runs/small/config.json'), 'utf8'));
    expect(saved.iterations).toBe(3);
    expect(saved.dataset.evalSplits).toEqual(['val']);
    expect(saved.dataset.root).toBe(join(dir, 'data-printed'));
    expect(saved.backbone.options.base).toBe(2);
    expect(saved.learningRate).toBe(0.01);
    const badSet = await dropclass(['train', '--config', 'configs/small.json', '--set', 'iterations'], { cwd: dir });
    expectOwnError(badSet, /--set iterations: expected key=value/);
    await writeFile(join(dir, 'configs/loop.json'), '{ "extends": "loop.json" }');
    expectOwnError(await dropclass(['train', '--config', 'configs/loop.json'], { cwd: dir }), /loop\.json: extends itself through/);
  });

  it('10. the example configs have distinct names, so their default --out folders (runs/<name>) differ', async () => {
    const examples = resolve(here, '../../../examples');
    const configs = readdirSync(examples).flatMap((e) => (existsSync(join(examples, e)) ? readdirSync(join(examples, e)).filter((f) => f.endsWith('.json') && !['package.json', 'tsconfig.json', 'tsconfig.build.json'].includes(f)).map((f) => join(e, f)) : []));
    expect(configs.length).toBeGreaterThanOrEqual(5);
    const names = configs.map((c) => basename(c, '.json'));
    expect(new Set(names).size, configs.join(', ')).toBe(names.length);
    expect(names).not.toContain('run');
  });
});
