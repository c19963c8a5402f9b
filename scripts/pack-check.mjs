#!/usr/bin/env node
// Packs every published (non-private) package, installs the tarballs into a fresh project outside the monorepo (no
// workspace links) and runs each package README's first TypeScript snippet there, as a user would,
// and the commands the packages install (dropclass, dropclass-reference on its shipped vectors).
// @dropclass/tfjs-wasm-train is also installed alone, from its tarball and the registry, in a
// project of its own, where its shipped example trains a conv net on wasm; @dropclass/native-kernels
// must have built its addon at install where a C++ compiler is; @dropclass/core must
// list no tfjs backend among its runtime dependencies.
// It also packs a copy of one package whose `files` list drops `dist`, and fails unless that copy
// is caught, so the check is known to catch it.
// Last, it follows the plugin guide (examples/custom-backbone/README.md, "From `npm init`") as
// written, in a fresh home folder: its commands in order, its files as shown, from `npm pack` of
// the packages to `dropclass train`, `eval` and `predict` of the package it makes.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const packagesDir = join(root, 'packages');
const quiet = { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' };
const npm = (args, cwd) => execFileSync('npm', args, { cwd, ...quiet, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false' } });

function pack(dir, destination) {
  const [info] = JSON.parse(npm(['pack', '--json', '--pack-destination', destination], dir));
  return { name: info.name, file: join(destination, info.filename), size: info.size, unpackedSize: info.unpackedSize, files: info.files.map((f) => f.path) };
}

function snippetOf(readme) {
  const match = readFileSync(readme, 'utf8').match(/```ts\n([\s\S]*?)```/);
  return match?.[1];
}

function install(project, tarballs) {
  const peers = { '@tensorflow/tfjs-core': '^4.22.0', '@tensorflow/tfjs-layers': '^4.22.0', tsx: '^4.0.0' };
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'dropclass-user-project', private: true, type: 'module', dependencies: { ...peers, ...Object.fromEntries(tarballs.map((t) => [t.name, `file:${t.file}`])) } }, null, 2),
  );
  npm(['install', '--no-package-lock'], project);
}

function runSnippet(project, name, code) {
  const file = join(project, `${name.replace(/[@/]/g, '_')}.ts`);
  writeFileSync(file, code);
  try {
    execFileSync(join(project, 'node_modules/.bin/tsx'), [file], { cwd: project, ...quiet, env: { ...process.env, DROPCLASS_BACKEND: 'wasm' } });
    return undefined;
  } catch (error) {
    return `${error.stderr || error.message}`.split('\n').filter(Boolean).slice(0, 6).join('\n');
  }
}

/**
 * The plugin guide as one shell script: the lines of its ```sh blocks, and a file written for each
 * block whose first line names a file (`// src/fcn.ts`), whole, where the guide stands at that point.
 */
function guideScript(readme) {
  const start = readme.indexOf('## From `npm init`');
  if (start < 0) throw new Error('examples/custom-backbone/README.md has no "From `npm init`" section');
  const end = readme.indexOf('\n## ', start + 3);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const lines = ['set -e'];
  const files = [];
  for (const [, lang, body] of section.matchAll(/```(\w*)\n([\s\S]*?)```/g)) {
    if (lang === 'sh') {
      for (const line of body.split('\n')) if (line.trim() && !line.trim().startsWith('#')) lines.push(`echo '$ ${line.replace(/\s+#.*$/, '').replace(/'/g, "'\\''")}'`, line);
      continue;
    }
    const file = body.match(/^\/\/ ([\w./-]+)\n/)?.[1];
    if (!file) continue;
    files.push(file);
    lines.push(`echo '$ (write ${file})'`, `mkdir -p "$(dirname '${file}')"`, `cat > '${file}' <<'DROPCLASS_GUIDE_FILE'`, body.replace(/\n$/, ''), 'DROPCLASS_GUIDE_FILE');
  }
  return { script: `${lines.join('\n')}\n`, files };
}

/** The environment of a user's shell: without what npm sets for the script running this check (a nested npm would take it for its own config). */
function userEnvironment() {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(npm_|NX_|INIT_CWD$|VITEST)/i.test(key)));
}

const work = mkdtempSync(join(tmpdir(), 'dropclass-pack-'));
const failures = [];
try {
  // Private workspace packages (the experiments, test helpers) are not published: not packed here.
  const packageDirs = readdirSync(packagesDir)
    .map((d) => join(packagesDir, d))
    .filter((dir) => !JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).private)
    .sort();
  const tarballs = packageDirs.map((dir) => pack(dir, work));
  const project = join(work, 'project');
  mkdirSync(project);
  install(project, tarballs);
  console.log('package                        packed   unpacked  files  runtime dependencies');
  for (const [i, t] of tarballs.entries()) {
    const manifest = JSON.parse(readFileSync(join(packageDirs[i], 'package.json'), 'utf8'));
    const deps = Object.keys(manifest.dependencies ?? {}).join(', ') || '-';
    console.log(`${t.name.padEnd(30)} ${(t.size / 1024).toFixed(1).padStart(6)} kB ${(t.unpackedSize / 1024).toFixed(1).padStart(7)} kB ${String(t.files.length).padStart(5)}  ${deps}`);
    if (!t.files.some((f) => f.startsWith('dist/'))) failures.push(`${t.name}: the tarball holds no dist/`);
    const code = snippetOf(join(packageDirs[i], 'README.md'));
    if (!code) {
      failures.push(`${t.name}: README.md has no \`\`\`ts snippet`);
      continue;
    }
    const error = runSnippet(project, t.name, code);
    console.log(`  README snippet: ${error ? 'FAILED' : 'ran'}`);
    if (error) failures.push(`${t.name}: README snippet failed:\n${error}`);
  }

  // @dropclass/native-kernels builds its addon when installed: on a machine with a C++ compiler, the
  // installed package must load it (elsewhere it says why, and wasm keeps its kernels).
  const nativeState = execFileSync(process.execPath, ['--input-type=module', '-e', "import { nativeKernelsUnavailable } from '@dropclass/native-kernels'; console.log(nativeKernelsUnavailable() ?? 'built and loaded')"], { cwd: project, ...quiet }).trim();
  const compiler = ['c++', 'g++', 'clang++'].some((cxx) => {
    try {
      execFileSync(cxx, ['--version'], quiet);
      return true;
    } catch {
      return false;
    }
  });
  console.log(`@dropclass/native-kernels installed from its tarball: ${nativeState}${compiler ? '' : ' (no C++ compiler here)'}`);
  if (compiler && nativeState !== 'built and loaded') failures.push(`@dropclass/native-kernels: not built at install although a C++ compiler is here: ${nativeState}`);

  // The commands the tarballs install: linked by npm, and running from the installed files.
  for (const [command, args, expected] of [
    ['dropclass', ['--help'], /Usage: dropclass/],
    ['dropclass-reference', [], /5 passed, 0 failed/],
  ]) {
    const bin = join(project, 'node_modules/.bin', command);
    let output;
    try {
      output = execFileSync(bin, args, { cwd: project, ...quiet, env: { ...process.env, DROPCLASS_BACKEND: 'wasm' } });
    } catch (error) {
      output = `${error.stdout ?? ''}${error.stderr || error.message}`;
      failures.push(`${command} ${args.join(' ')} failed in the installed project:\n${output.split('\n').filter(Boolean).slice(-6).join('\n')}`);
      continue;
    }
    const ok = expected.test(output);
    console.log(`command ${[command, ...args].join(' ')}: ${ok ? 'ran' : 'FAILED'}`);
    if (!ok) failures.push(`${command} ${args.join(' ')} printed no ${expected} in the installed project:\n${output.slice(-400)}`);
  }

  // The engine alone: its tarball, tfjs-core and tfjs-layers from the registry, nothing else of ours.
  const engine = tarballs.find((t) => t.name === '@dropclass/tfjs-wasm-train');
  const engineProject = join(work, 'engine-project');
  mkdirSync(engineProject);
  install(engineProject, [engine]);
  const example = join(engineProject, 'node_modules/@dropclass/tfjs-wasm-train/examples/train-conv.mjs');
  try {
    const output = execFileSync(process.execPath, [example], { cwd: engineProject, ...quiet, env: { ...process.env, DROPCLASS_THREADS: '2' } });
    const ok = /^backend wasm \(2 threads\): loss /m.test(output);
    console.log(`@dropclass/tfjs-wasm-train installed alone, examples/train-conv.mjs: ${ok ? 'trained' : 'FAILED'}`);
    if (!ok) failures.push(`@dropclass/tfjs-wasm-train: examples/train-conv.mjs printed no training result:\n${output.slice(-400)}`);
  } catch (error) {
    failures.push(`@dropclass/tfjs-wasm-train: examples/train-conv.mjs failed where the package is installed alone:\n${`${error.stdout ?? ''}${error.stderr || error.message}`.split('\n').filter(Boolean).slice(-6).join('\n')}`);
  }
  const coreManifest = JSON.parse(readFileSync(join(packagesDir, 'dropclass-core/package.json'), 'utf8'));
  const coreBackends = Object.keys(coreManifest.dependencies ?? {}).filter((name) => /^@tensorflow\/tfjs-(backend-|node)/.test(name));
  if (coreBackends.length) failures.push(`@dropclass/core lists tfjs backends among its runtime dependencies: ${coreBackends.join(', ')}`);

  // The check must catch a package whose files list leaves out dist.
  const broken = join(work, 'broken-metrics');
  cpSync(join(packagesDir, 'metrics'), broken, { recursive: true, filter: (src) => !src.includes('node_modules') });
  const manifest = JSON.parse(readFileSync(join(broken, 'package.json'), 'utf8'));
  manifest.files = ['README.md'];
  writeFileSync(join(broken, 'package.json'), JSON.stringify(manifest, null, 2));
  const brokenTarball = pack(broken, join(work));
  const brokenProject = join(work, 'broken-project');
  mkdirSync(brokenProject);
  install(brokenProject, [brokenTarball]);
  const caught = brokenTarball.files.every((f) => !f.startsWith('dist/')) && runSnippet(brokenProject, 'broken', snippetOf(join(broken, 'README.md'))) !== undefined;
  console.log(`a copy of @dropclass/metrics without dist in its files list: ${caught ? 'caught' : 'NOT caught'}`);
  if (!caught) failures.push('the check did not catch a package packed without dist');

  // The plugin guide, as written, in a fresh home folder (npm keeps the user's settings and cache).
  const { script, files } = guideScript(readFileSync(join(root, 'examples/custom-backbone/README.md'), 'utf8'));
  const home = join(work, 'home');
  mkdirSync(home);
  const userNpmrc = join(homedir(), '.npmrc');
  const env = {
    ...userEnvironment(),
    HOME: home,
    DROPCLASS_BACKEND: 'wasm',
    npm_config_cache: execFileSync('npm', ['config', 'get', 'cache'], { ...quiet, env: userEnvironment() }).trim(),
    ...(existsSync(userNpmrc) ? { npm_config_userconfig: userNpmrc } : {}),
  };
  const t0 = performance.now();
  const guide = spawnSync('bash', ['-c', script], { cwd: root, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const seconds = ((performance.now() - t0) / 1000).toFixed(0);
  const plugin = join(home, 'backbone-fcn');
  const evalFile = join(plugin, 'runs/fcn/eval.json');
  const trained = guide.status === 0 && existsSync(evalFile) && existsSync(join(plugin, 'runs/fcn/masks/predictions.json'));
  console.log(`plugin guide (examples/custom-backbone/README.md), followed as written in a fresh folder (${files.length} files written, ${seconds} s): ${trained ? `@acme/backbone-fcn built, tested, trained, evaluated and predicted with (runs/fcn at step ${JSON.parse(readFileSync(evalFile, 'utf8')).step})` : 'FAILED'}`);
  if (trained) {
    // Without its exports map the package cannot import itself by name, and dropclass train cannot find it: the check must see that.
    const manifestFile = join(plugin, 'package.json');
    const { exports: _, ...withoutExports } = JSON.parse(readFileSync(manifestFile, 'utf8'));
    writeFileSync(manifestFile, JSON.stringify(withoutExports, null, 2));
    const bare = spawnSync(join(plugin, 'node_modules/.bin/dropclass'), ['train', '--config', 'fcn.json', '--out', 'runs/no-exports'], { cwd: plugin, env, encoding: 'utf8' });
    const refused = bare.status === 1 && /backbone package @acme\/backbone-fcn is not installed/.test(bare.stderr);
    console.log(`the same package without "exports": ${refused ? 'refused by dropclass train, as expected' : 'NOT refused'}`);
    if (!refused) failures.push(`the plugin package without "exports" was not refused by dropclass train (exit ${bare.status}):\n${bare.stderr.slice(-400)}`);
  }
  if (!trained) failures.push(`the plugin guide failed where it was followed as written (exit ${guide.status ?? guide.signal}):\n${`${guide.stdout}${guide.stderr}`.trim().split('\n').slice(-25).join('\n')}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
if (failures.length) {
  console.error(`\npack-and-install check failed:\n${failures.join('\n')}`);
  process.exit(1);
}
console.log('pack-and-install check passed');
