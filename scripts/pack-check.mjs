#!/usr/bin/env node
// Packs every package, installs the tarballs into a fresh project outside the monorepo (no
// workspace links) and runs each package README's first TypeScript snippet there, as a user would,
// and the commands the packages install (dropclass, dropclass-reference on its shipped vectors).
// @dropclass/tfjs-wasm-train is also installed alone, from its tarball and the registry, in a
// project of its own, where its shipped example trains a conv net on wasm; @dropclass/native-kernels
// must have built its addon at install where a C++ compiler is; @dropclass/core must
// list no tfjs backend among its runtime dependencies.
// It also packs a copy of one package whose `files` list drops `dist`, and fails unless that copy
// is caught, so the check is known to catch it.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

const work = mkdtempSync(join(tmpdir(), 'dropclass-pack-'));
const failures = [];
try {
  const packageDirs = readdirSync(packagesDir).map((d) => join(packagesDir, d)).sort();
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
} finally {
  rmSync(work, { recursive: true, force: true });
}
if (failures.length) {
  console.error(`\npack-and-install check failed:\n${failures.join('\n')}`);
  process.exit(1);
}
console.log('pack-and-install check passed');
