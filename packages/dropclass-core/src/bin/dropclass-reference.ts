#!/usr/bin/env node
import { ENGINE_PACKAGE, startBackend } from '../backend.js';
import { ABSOLUTE_TOLERANCE, BUNDLED_REFERENCE_DIR, RELATIVE_TOLERANCE, checkReferenceFile, findReferenceFiles } from '../reference/check.js';

const USAGE = `usage: dropclass-reference [file-or-directory...]
Runs the DropClass core in float32 on every dropclass-reference/1 JSON file given (directories are
searched recursively; with no argument, the vectors shipped in ${BUNDLED_REFERENCE_DIR}) and prints
the max absolute and relative error of each output and gradient.
Exits 1 when any quantity is off by more than ${RELATIVE_TOLERANCE} relative and ${ABSOLUTE_TOLERANCE} absolute, or a file
holds nothing to compare. The backend is started by ${ENGINE_PACKAGE} when it is installed, and
chosen as everywhere else (DROPCLASS_BACKEND=wasm|cpu|tensorflow to force one).`;

async function main(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const paths = args.length > 0 ? args : [BUNDLED_REFERENCE_DIR];
  await startBackend();
  const files = (await Promise.all(paths.map(findReferenceFiles))).flat();
  if (files.length === 0) {
    console.error(`dropclass-reference: no .json files found under ${paths.join(', ')}; give dropclass-reference/1 files or folders of them`);
    return 2;
  }
  let failed = 0;
  for (const file of files) {
    const result = await checkReferenceFile(file);
    console.log(`${result.ok ? 'PASS' : 'FAIL'} ${file}`);
    if (result.problem) console.log(`  ${result.problem}`);
    for (const c of result.checks) {
      const mark = c.ok ? 'ok ' : 'OFF';
      console.log(`  ${mark} ${c.quantity.padEnd(20)} max abs ${c.maxAbsError.toExponential(2)}  max rel ${c.maxRelError.toExponential(2)}`);
    }
    if (!result.ok) failed++;
  }
  console.log(`${files.length - failed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`dropclass-reference: ${error.message}`);
    process.exit(2);
  },
);
