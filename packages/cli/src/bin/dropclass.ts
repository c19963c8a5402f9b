#!/usr/bin/env node
import { main } from '../program.js';

// Whatever escapes the command (a rejection nothing awaited, an exception thrown in a callback) is
// still reported as the command's own one-line error with exit code 1. These listeners come first,
// before the crash handlers a backend adds when it loads (tfjs-backend-wasm's exit with code 7).
const escaped = (error: unknown) => {
  process.stderr.write(`dropclass: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
};
process.prependListener('uncaughtException', escaped);
process.prependListener('unhandledRejection', escaped);

main(process.argv.slice(2)).then((code) => process.exit(code));
