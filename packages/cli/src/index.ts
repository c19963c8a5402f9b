/**
 * `@dropclass/cli`: the `dropclass` command line. The library it calls is `@dropclass/train`;
 * import that from code.
 *
 * @packageDocumentation
 */
export { buildProgram, main } from './program.js';
