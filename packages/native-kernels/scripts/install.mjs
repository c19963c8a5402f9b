// Builds the addon when the package is installed. A failed build does not fail the install: the
// package then reports why (the wasm backend keeps its own kernels), and `npm rebuild` retries.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
if (process.env.DROPCLASS_NATIVE?.trim() === '0') {
  console.log('@dropclass/native-kernels: not built (DROPCLASS_NATIVE=0)');
  process.exit(0);
}
// npm runs install scripts with the path of its own node-gyp; otherwise one on the PATH.
const gyp = process.env.npm_config_node_gyp;
const [command, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const result = spawnSync(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', shell: !gyp && process.platform === 'win32' });
if (result.status === 0) {
  console.log('@dropclass/native-kernels: built');
} else {
  const why = result.error ? result.error.message : (result.stderr || result.stdout).split('\n').filter((l) => /error|ERR!/i.test(l)).slice(0, 8).join('\n');
  console.warn(`@dropclass/native-kernels: the native build failed; training keeps the wasm kernels.\n${why}\nRetry with: npm rebuild @dropclass/native-kernels`);
}
