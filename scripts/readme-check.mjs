#!/usr/bin/env node
// Runs every command that README.md shows, in the order it shows them, in a fresh copy of this
// checkout: its tracked and untracked files (what a clone has, plus uncommitted edits), without
// node_modules, build outputs or anything beside it, in a temporary folder of its own.
//
// The commands are those of the ```sh blocks and every inline `npm ...` / `npx ...` span. Each must
// be listed in PLAN below, as run as written, or with what runs instead and why. The check fails on
// a README command PLAN does not list, on a PLAN entry the README no longer shows, and on any
// command that exits non-zero. It first checks that it catches a command it does not know.
//
// usage: node scripts/readme-check.mjs [--keep]   (--keep leaves the copy in place and prints it)
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const README = 'README.md';

/**
 * Every command README.md shows. `run`: the shell commands run for it, in the copy's root (the
 * command itself when run as written). `why`: the reason, wherever `run` is not the command itself.
 */
const PLAN = new Map([
  ['npm ci', { run: ['npm ci'] }],
  [
    'npm start',
    {
      run: ['npm start -- --quick'],
      why: 'the full job takes about 9 minutes on 2 cores; --quick (appended to the same `dropclass main`) runs the same steps (build, synthetic data, baseline and DropClass, evaluation on val and val-shifted, dependency diagnostic, report) on a tiny configuration',
    },
  ],
  ['npm test', { run: [], why: 'this check is part of npm test: running npm test from it would recurse' }],
  [
    'npx dropclass train --config examples/voc/finetune-torchvision.json --out runs/voc-finetune',
    {
      run: [],
      why: "it needs PASCAL VOC 2012 and torchvision's weights, neither of which can be downloaded here; examples/voc's test (part of npm test) trains this very config for one step on a tree in the VOC layout, from torchvision's deeplabv3_resnet50 with random weights written by PyTorch (skipped, saying so, where python3-torchvision is not installed)",
    },
  ],
  ['npm run build', { run: ['npm run build'] }],
  ['npx dropclass-reference', { run: ['npx dropclass-reference'] }],
  ['npx dropclass-reference DIR', { run: ['npx dropclass-reference packages/dropclass-core/reference'], why: 'DIR stands for a folder of vectors of one\'s own; the shipped folder is given by its path' }],
  [
    'node packages/cli/dist/bin/dropclass.js main --seeds 6 --iterations 800 --jobs 2 --out runs/experiment800-6seeds --results docs/results-800-6seeds.md',
    {
      run: ['node packages/cli/dist/bin/dropclass.js main --seeds 2 --quick --jobs 2 --out runs/experiment --results docs/results-800-6seeds.md'],
      why: 'twelve runs of 800 steps take about 33 minutes on 2 cores; --quick runs the same parallel job and writes the same results page on a tiny configuration, two seeds of it, over the copy\'s page',
    },
  ],
  [
    'node packages/cli/dist/bin/dropclass.js main --regime finetune --modes baseline,dropclass,weighted-ce,dropclass+weighted-ce --seeds 6 --iterations 800 --jobs 2 --out runs/finetune-800 --results docs/results-finetune-800-6seeds.md',
    {
      run: ['node packages/cli/dist/bin/dropclass.js main --regime finetune --modes baseline,dropclass,weighted-ce,dropclass+weighted-ce --seeds 2 --quick --jobs 2 --out runs/finetune-check --results docs/results-finetune-800-6seeds.md'],
      why: 'six pretraining runs and 24 fine-tuning runs take about 76 minutes on 2 cores; --quick runs the same job (the balanced pretraining set, one pretraining run per seed, every mode fine-tuned from it, the page over the copy\'s) on a tiny configuration, two seeds of it',
    },
  ],
  ['npm run parity', { run: ['npm run parity -- --steps 3 --summary'], why: 'the same lockstep check (both modes, every step from our state, the free runs), on 3 steps of the 200' }],
  [
    'npm run dropclass -- export --model runs/main/seed-0/dropclass --out web-model --quantize float16',
    {
      run: ['npm run dropclass -- export --model runs/main-quick/seed-0/dropclass --out web-model --quantize float16'],
      why: 'the full main job\'s run is not there; the quick job that `npm start` ran above left the same run under runs/main-quick',
    },
  ],
  [
    'npm run dropclass -- parity --backbone deeplabv3',
    { run: ['npm run dropclass -- parity --backbone deeplabv3 --steps 1 --mode dropclass --summary'], why: 'the same check on one step of DropClass training: a DeepLabV3-ResNet18 step in float64 takes long on 2 cores' },
  ],
  ['npm run demo', { run: [], why: 'it serves the page until stopped; examples/web\'s test builds and serves the same page and drives it in headless Chromium' }],
  ['npm run dropclass -- --help', { run: ['npm run dropclass -- --help'] }],
  ['npm run bench', { run: ['npm run bench -- --quick'], why: 'the full benchmark times many steps of a 4x128x128 U-Net and a DeepLabV3; --quick runs the same benchmark, the PyTorch anchor included, on a tiny configuration' }],
  [
    'npm run bench -- --profile',
    { run: ['npm run bench -- --quick --profile --no-deeplab'], why: 'as npm run bench: --quick, the same path with the per-kernel profile; --no-deeplab, as the DeepLab part ran just before' },
  ],
  ['npm run pack-check', { run: ['npm run pack-check'] }], // npm test runs pack-check here only
  ['npm run docs', { run: ['npm run docs'] }],
  ['npm run readme-check', { run: [], why: 'this check itself: running it from itself would recurse' }],
  [
    'npx nx run-many -t build|test|lint',
    {
      run: ['npx nx run-many -t build', 'npx nx run-many -t lint', 'npx nx run-many -t test --projects=@dropclass/metrics'],
      why: '"build|test|lint" names three targets; build and lint run as written; every project\'s tests are npm test itself, which runs this check, so test runs for one project (the same target)',
    },
  ],
  ['npx nx affected -t test', { run: ['npx nx affected -t test'] }],
  ['npx changeset', { run: ['npx changeset status'], why: 'npx changeset asks interactively which packages changed; status runs the same tool on the changesets present' }],
  ['npm run version-packages', { run: ['npm run version-packages'] }],
]);

/** The commands a README shows, in its order: lines of ```sh blocks (comments dropped, `&&` split) and inline npm/npx spans. */
export function readmeCommands(text) {
  const commands = [];
  for (const [, lang, body, span] of text.matchAll(/```(\w*)\n([\s\S]*?)```|`([^`\n]+)`/g)) {
    if (span !== undefined) {
      if (/^(npm|npx) /.test(span)) commands.push(span.trim());
    } else if (lang === 'sh') {
      for (const line of body.split('\n')) {
        const command = line.replace(/\s+#.*$/, '').trim();
        if (command && !command.startsWith('#')) commands.push(...command.split('&&').map((c) => c.trim()));
      }
    }
  }
  return [...new Set(commands)];
}

/** The plan for a README: each command with what runs for it. Throws on commands PLAN does not list and on PLAN entries the README lacks. */
export function planFor(text) {
  const commands = readmeCommands(text);
  const unknown = commands.filter((c) => !PLAN.has(c));
  if (unknown.length) {
    throw new Error(
      `${README} shows commands scripts/readme-check.mjs does not know: ${unknown.map((c) => JSON.stringify(c)).join(', ')}; add each to PLAN there, run as written or with what runs instead and why`,
    );
  }
  const stale = [...PLAN.keys()].filter((c) => !commands.includes(c));
  if (stale.length) {
    throw new Error(`scripts/readme-check.mjs lists commands ${README} no longer shows: ${stale.map((c) => JSON.stringify(c)).join(', ')}; remove them from PLAN`);
  }
  return commands.map((command) => ({ command, ...PLAN.get(command) }));
}

/** Copies the checkout's tracked and untracked (not ignored) files; a git repository of its own, as a clone is. */
function freshCopy() {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' });
  const work = mkdtempSync(join(tmpdir(), 'dropclass-readme-'));
  const copy = join(work, 'dropclass');
  for (const file of listed.split('\0').filter(Boolean)) {
    if (!existsSync(join(root, file))) continue; // deleted, not yet committed
    mkdirSync(dirname(join(copy, file)), { recursive: true });
    cpSync(join(root, file), join(copy, file));
  }
  const git = (...args) => execFileSync('git', args, { cwd: copy, stdio: 'ignore' });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('-c', 'user.name=readme-check', '-c', 'user.email=readme-check@localhost', 'commit', '-q', '-m', 'copy of the checkout');
  return { work, copy };
}

/** The environment of a user's shell: without the variables npm and nx set for the script running this check. */
function userEnvironment() {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(npm_|NX_|INIT_CWD$|VITEST)/i.test(key)));
}

function main(args) {
  const text = readFileSync(join(root, README), 'utf8');
  // The check must catch a command it does not know.
  let caught = false;
  try {
    planFor(`${text}\n\`\`\`sh\nnpm run something-new\n\`\`\`\n`);
  } catch (error) {
    caught = /does not know: "npm run something-new"/.test(error.message);
  }
  if (!caught) throw new Error('scripts/readme-check.mjs did not catch a README command missing from PLAN');
  const plan = planFor(text);

  console.log(`${README}: ${plan.length} commands`);
  for (const { command, run, why } of plan) {
    const asWritten = run.length === 1 && run[0] === command;
    console.log(`  ${command}\n    ${asWritten ? 'run as written' : run.length ? `runs ${run.map((r) => `\`${r}\``).join(', then ')}` : 'not run'}${why ? `: ${why}` : ''}`);
  }

  const { work, copy } = freshCopy();
  console.log(`\nin a fresh copy of the checkout, ${copy}:`);
  const env = userEnvironment();
  const failures = [];
  try {
    for (const { command, run } of plan) {
      for (const line of run) {
        const t0 = performance.now();
        const result = spawnSync('sh', ['-c', line], { cwd: copy, env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
        const seconds = ((performance.now() - t0) / 1000).toFixed(1);
        const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trimEnd().split('\n');
        const ok = result.status === 0;
        console.log(`$ ${line}   -> exit ${result.status ?? result.signal}, ${seconds} s${line === command ? '' : ` (for \`${command}\`)`}`);
        for (const l of output.slice(ok ? -3 : -40)) console.log(`    ${l}`);
        if (!ok) failures.push(`\`${line}\` (for \`${command}\`) exited ${result.status ?? result.signal}`);
      }
    }
  } finally {
    if (args.includes('--keep')) console.log(`\nthe copy is kept at ${copy}`);
    else rmSync(work, { recursive: true, force: true });
  }
  if (failures.length) {
    console.error(`\nREADME check failed:\n${failures.join('\n')}`);
    return 1;
  }
  console.log('README check passed: every command README.md shows ran in a fresh copy');
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    process.exit(main(process.argv.slice(2)));
  } catch (error) {
    console.error(`readme-check: ${error.message}`);
    process.exit(1);
  }
}
