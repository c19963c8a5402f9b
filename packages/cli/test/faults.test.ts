import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '@dropclass/core/rng';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, dropclass as runCli, type Run, tinyConfig } from './support.js';

// Fault injection: a run killed outright (SIGKILL, as a power cut or the OOM killer would) at random
// points, while its data is written, between steps, while a checkpoint is written, during its final
// evaluation and its report, and at random times, then resumed each time, ends bit-identical to a
// run that was never interrupted: weights, metrics log, evaluation, report and overlays.
// DROPCLASS_FAULT_SEED=<n> replays one sequence of kills.

/** Runs the command line; `kill` kills it at a named point (DROPCLASS_KILL_AT), after `afterMs`, or once `when()` holds. */
async function dropclass(args: string[], cwd: string, env: Record<string, string>, kill?: { afterMs?: number; when?: () => boolean }): Promise<Run> {
  const timers: NodeJS.Timeout[] = [];
  const run = await runCli(args, {
    cwd,
    env,
    onStart: (child) => {
      if (kill?.afterMs !== undefined) timers.push(setTimeout(() => child.kill('SIGKILL'), kill.afterMs));
      const when = kill?.when;
      if (when)
        timers.push(
          setInterval(() => {
            if (when()) child.kill('SIGKILL');
          }, 2),
        );
    },
  });
  timers.forEach((t) => clearInterval(t));
  return run;
}

/** What a finished run is, byte for byte, less what names it (its folder) and when it ran. */
function runContents(run: string): Record<string, string> {
  const out: Record<string, string> = {};
  const latest = JSON.parse(readFileSync(join(run, 'checkpoints/latest.json'), 'utf8'));
  const checkpoint = join(run, 'checkpoints', latest.dir);
  for (const f of readdirSync(checkpoint)) out[`checkpoint/${f}`] = readFileSync(join(checkpoint, f)).toString('base64');
  out.metrics = readFileSync(join(run, 'metrics.jsonl'), 'utf8').replace(/"time":"[^"]*",/g, '');
  out.eval = JSON.stringify({ ...JSON.parse(readFileSync(join(run, 'eval.json'), 'utf8')), name: undefined });
  out.report = readFileSync(join(run, 'report.md'), 'utf8').split('\n').slice(1).join('\n');
  for (const split of readdirSync(join(run, 'overlays'))) {
    for (const f of readdirSync(join(run, 'overlays', split))) out[`overlays/${split}/${f}`] = readFileSync(join(run, 'overlays', split, f)).toString('base64');
  }
  return out;
}

/** The tests' tiny config, with a training set large enough that writing it takes a while, and 12 steps. */
const config = (root: string) => {
  const c = tinyConfig(root, { iterations: 12, evalEvery: 4 });
  c.dataset.generate.train = 160;
  return c;
};

describe('fault injection', () => {
  let dir: string;
  let clean: Record<string, string>;
  // How long the clean run took, from start to exit: timed kills fall within it, however fast the machine.
  let cleanMs = 0;
  beforeAll(async () => {
    expect(existsSync(bin), `${bin} is missing: build the package first`).toBe(true);
    dir = await mkdtemp(join(tmpdir(), 'dropclass-faults-'));
    await writeFile(join(dir, 'clean.json'), JSON.stringify(config('data-clean')));
    const start = performance.now();
    const run = await dropclass(['train', '--config', 'clean.json', '--out', 'runs/clean'], dir, { DROPCLASS_CACHE_DIR: join(dir, 'cache-clean') });
    cleanMs = performance.now() - start;
    expect(run.code, run.stderr).toBe(0);
    clean = runContents(join(dir, 'runs/clean'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('every resume after a kill at a random point ends bit-identical to a run that was never killed', async () => {
    const seed = Number(process.env.DROPCLASS_FAULT_SEED ?? Date.now() % 1_000_000);
    // The kill sequence, drawn with core's generator (the one training draws with).
    const rng = new Rng(seed);
    const pick = <T>(items: T[]) => items[rng.int(items.length)];
    await writeFile(join(dir, 'faulty.json'), JSON.stringify(config('data-faulty')));
    const run = join(dir, 'runs/faulty');
    const env = { DROPCLASS_CACHE_DIR: join(dir, 'cache-faulty') };
    const args = () => ['train', '--config', 'faulty.json', '--out', 'runs/faulty', ...(existsSync(join(run, 'checkpoints/latest.json')) ? ['--resume'] : [])];
    const images = join(dir, 'data-faulty/train/images');
    // While the data is written, then at random points of training, then in the final evaluation and its report.
    const plan: { label: string; env?: Record<string, string>; kill?: { afterMs?: number; when?: () => boolean } }[] = [];
    const written = 20 + rng.int(100);
    plan.push({ label: `data generation (after ${written} of 160 training images)`, kill: { when: () => existsSync(images) && readdirSync(images).length >= written } });
    for (let i = 0; i < 5; i++) {
      const point = pick(['step', 'metrics', 'checkpoint', 'pruned', 'time']);
      if (point === 'time') {
        // between a fifth and four fifths of a whole run (a fixed time would miss on a fast machine:
        // the run ends first, and so does the plan)
        const ms = Math.round(cleanMs * (0.2 + 0.6 * rng.next()));
        plan.push({ label: `${ms} ms after start`, kill: { afterMs: ms } });
      } else {
        const n = 1 + rng.int(point === 'step' || point === 'metrics' ? 3 : 2);
        plan.push({ label: `${point} #${n}`, env: { DROPCLASS_KILL_AT: `${point}:${n}` } });
      }
    }

    const killed: string[] = [];
    const missed: string[] = [];
    const attempt = async (a: (typeof plan)[number], argsOf: () => string[]) => {
      const result = await dropclass(argsOf(), dir, { ...env, ...a.env }, a.kill);
      if (result.signal === 'SIGKILL') killed.push(a.label);
      else {
        // the run ended before the point came (a random point after the run's last step; or it failed, which the test reports)
        expect(result.code, `${a.label}: ${result.stderr}`).toBe(0);
        missed.push(a.label);
      }
    };
    for (const a of plan) await attempt(a, args);
    const last = await dropclass(args(), dir, env);
    expect(last.code, last.stderr).toBe(0);
    // The kills in the final evaluation and between the report and eval.json, on a run of their own: random
    // points before them can take a run to its end (how far a timed kill gets depends on the machine's load).
    const end = join(dir, 'runs/faulty-end');
    const endArgs = () => ['train', '--config', 'faulty.json', '--out', 'runs/faulty-end', ...(existsSync(join(end, 'checkpoints/latest.json')) ? ['--resume'] : [])];
    for (const a of [
      { label: 'final evaluation', env: { DROPCLASS_KILL_AT: 'evaluated:1' } },
      { label: 'report written, eval.json not yet', env: { DROPCLASS_KILL_AT: 'report:1' } },
    ]) {
      await attempt(a, endArgs);
    }
    const lastEnd = await dropclass(endArgs(), dir, env);
    expect(lastEnd.code, lastEnd.stderr).toBe(0);
    console.log(`fault injection, seed ${seed}: ${killed.length} kills survived (${killed.join('; ')})${missed.length ? `; not reached: ${missed.join('; ')}` : ''}`);
    expect(killed, `seed ${seed}`).toEqual(expect.arrayContaining([expect.stringMatching(/^data generation/), 'final evaluation', 'report written, eval.json not yet']));
    expect(killed.length, `seed ${seed}`).toBeGreaterThanOrEqual(4);
    for (const r of [run, end]) {
      const faulty = runContents(r);
      expect(Object.keys(faulty).sort(), `seed ${seed}`).toEqual(Object.keys(clean).sort());
      for (const key of Object.keys(clean)) expect(faulty[key], `seed ${seed}: ${r} ${key}`).toBe(clean[key]);
    }
    // the data written again after the kill is the data of the clean run
    for (const f of readdirSync(join(dir, 'data-clean/train/masks')).slice(0, 40)) {
      expect(readFileSync(join(dir, 'data-faulty/train/masks', f)).equals(readFileSync(join(dir, 'data-clean/train/masks', f))), f).toBe(true);
    }
  }, 600_000);
});
