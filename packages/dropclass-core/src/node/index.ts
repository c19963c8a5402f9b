/**
 * `@dropclass/core/node`: what needs Node's file system. Models saved to and loaded from
 * directories, exports written to directories, weight files read from disk, and the tfjs
 * `IOHandler` for a directory that these use. The main entry, `@dropclass/core`, saves and loads
 * through any tfjs `IOHandler` and runs in a browser.
 *
 * @packageDocumentation
 */
export { MODEL_INFO_FILE, MODEL_JSON, WEIGHTS_BIN, type FileSystemHandlerOptions, fileSystemHandler } from './file-system.js';
export { exportStockModel, loadModel, readModelInfo, saveModel } from './model-files.js';
export { readSafetensors } from './read-safetensors.js';
