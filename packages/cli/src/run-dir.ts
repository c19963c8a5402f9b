import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { differingKeys } from '@dropclass/datasets';
import { Checkpoints } from './checkpoint.js';
import type { RunConfig } from './config.js';
import { CONFIG_HASH, CONFIG_JSON, EVAL_JSON } from './paths.js';

/** JSON with object keys sorted at every level, so equal configs serialise (and hash) the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/** SHA-256 of the resolved run config (canonical JSON). */
export function configHash(config: RunConfig): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex');
}

/** Writes `config.json` (the resolved config) and `config-hash` into a run directory. */
export async function writeRunConfig(dir: string, config: RunConfig): Promise<void> {
  await writeFile(join(dir, CONFIG_JSON), JSON.stringify(config, null, 2));
  await writeFile(join(dir, CONFIG_HASH), `${configHash(config)}\n`);
}

/** A run directory holds a run of another config than the one asked for. */
export class RunConfigMismatchError extends Error {}

export type RunState = 'new' | 'partial' | 'complete';

/**
 * What a run directory holds for `config`: nothing yet (`new`), a partial run of this very config
 * (`partial`, to resume) or a finished one (`complete`, to reuse). A directory whose recorded config
 * hash differs (or that records none) throws, naming the keys that differ and how to start fresh.
 */
export async function runState(dir: string, config: RunConfig, freshHint: string): Promise<RunState> {
  const hasCheckpoint = (await new Checkpoints(join(dir, 'checkpoints')).latest()) !== undefined;
  const hasEval = existsSync(join(dir, EVAL_JSON));
  if (!hasCheckpoint && !hasEval) return 'new';
  const hashFile = join(dir, CONFIG_HASH);
  const recorded = existsSync(hashFile) ? (await readFile(hashFile, 'utf8')).trim() : undefined;
  const wanted = configHash(config);
  if (recorded !== wanted) {
    let keys = ['(no config-hash recorded: a run from an older version)'];
    if (recorded !== undefined && existsSync(join(dir, CONFIG_JSON))) {
      const stored = JSON.parse(await readFile(join(dir, CONFIG_JSON), 'utf8')) as unknown;
      const differing = differingKeys(stored, JSON.parse(JSON.stringify(config)));
      keys = differing.length ? differing : ['(config.json was edited after the run started)'];
    }
    throw new RunConfigMismatchError(
      `${dir} holds a ${hasEval ? 'finished' : 'partial'} run of another config (${CONFIG_HASH} ${recorded?.slice(0, 12) ?? 'missing'}, this config ${wanted.slice(0, 12)}); ` +
        `differing: ${keys.join(', ')}. It is not reused: ${freshHint}`,
    );
  }
  return hasEval ? 'complete' : 'partial';
}

/** Removes a run directory (for --fresh). */
export async function removeRun(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
