#!/usr/bin/env node
// The `dropclass-reference` command. This launcher is committed (not built), so npm links the command when it
// installs the package, also in a fresh clone before `npm run build`; the command itself is
// dist/bin/dropclass-reference.js, which the build writes.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const command = new URL('../dist/bin/dropclass-reference.js', import.meta.url);
if (!existsSync(command)) {
  console.error(
    `dropclass-reference: ${fileURLToPath(command)} does not exist: @dropclass/core is not built. Run npm run build first (in the repository root), then run dropclass-reference again.`,
  );
  process.exit(1);
}
await import(command.href);
