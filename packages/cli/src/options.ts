import type { InferenceOptions } from '@dropclass/core';
import { BACKEND_NAMES } from '@dropclass/tfjs-wasm-train';
import { type Command, InvalidArgumentError, Option } from 'commander';

/** Where a command's progress and notes go (its results go to stdout). */
export const log = (line: string) => process.stderr.write(`${line}\n`);

/** A positive whole number. */
export const integer = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got ${value}`);
  return n;
};

/** `512x1024` or `512,1024` -> [512, 1024]. */
const sizePair = (name: string) => (value: string): [number, number] => {
  const parts = value.split(/[x,]/i).map((p) => Number(p.trim()));
  if (parts.length !== 2 || !parts.every((n) => Number.isInteger(n) && n > 0)) {
    throw new InvalidArgumentError(`${name} must be HEIGHTxWIDTH in positive whole pixels (e.g. 512x1024), got ${value}`);
  }
  return parts as [number, number];
};

/** `0.75,1,1.25` -> [0.75, 1, 1.25]. */
const scaleList = (value: string): number[] => {
  const scales = value.split(',').map((p) => Number(p.trim()));
  if (scales.length === 0 || !scales.every((s) => Number.isFinite(s) && s > 0)) {
    throw new InvalidArgumentError(`--scales must be positive numbers separated by commas (e.g. 0.75,1,1.25), got ${value}`);
  }
  return scales;
};

/** `baseline,dropclass` -> ['baseline', 'dropclass']. */
export const modeList = (value: string): string[] => value.split(',').map((m) => m.trim()).filter(Boolean);

/** The inference flags of `eval` and `predict`. */
export const inferenceOptions = (command: Command) =>
  command
    .option('--window <HxW>', 'sliding-window inference with this window (default: the run config\'s, else whole images)', sizePair('--window'))
    .option('--stride <HxW>', 'step between windows (default: half the window)', sizePair('--stride'))
    .option('--flip', 'test-time augmentation: also predict the flipped image and average the logits')
    .option('--scales <list>', 'test-time augmentation: image scales whose logits are averaged, e.g. 0.75,1,1.25', scaleList);

/** The inference flags given (a flag given replaces the run config's value). */
export const inferenceFlags = (flags: InferenceOptions): InferenceOptions => ({ window: flags.window, stride: flags.stride, flip: flags.flip, scales: flags.scales });

export const backendOption = () => new Option('--backend <name>', 'compute backend (default: tensorflow if installed, else wasm, else cpu; or DROPCLASS_BACKEND)').choices([...BACKEND_NAMES]);

/**
 * The repository's experiments (`@dropclass/experiments`, a private workspace package): `main`,
 * `bench` and `parity` run in a clone of the repository, where it is built beside this package.
 */
export async function experiments(command: string): Promise<typeof import('@dropclass/experiments')> {
  try {
    return await import('@dropclass/experiments');
  } catch (error) {
    const e = error as { code?: string; message?: string };
    if (e.code !== 'ERR_MODULE_NOT_FOUND' || !e.message?.includes("'@dropclass/experiments'")) throw error;
    throw new Error(`dropclass ${command} runs the project's experiments, which come with the repository, not with the published package: clone it, run npm ci && npm run build there, and run node packages/cli/dist/bin/dropclass.js ${command}`);
  }
}
