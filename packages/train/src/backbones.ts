import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type SegmentationBackbone, createBackbone as createRegisteredBackbone, getBackbone, registeredBackbones } from '@dropclass/core';
// The built-in adapters register `unet` and `deeplabv3` when imported.
import '@dropclass/backbone-deeplab';
import '@dropclass/backbone-unet';
import { resolve as resolveModule } from 'import-meta-resolve';

/** A run config's backbone: a registered adapter's name, the package that registers it, its options. */
export interface BackboneConfig {
  kind: string;
  package?: string;
  options: Record<string, unknown>;
}

/** Thrown when a backbone package cannot be found or imported; names the package and what to run. */
export class BackbonePackageError extends Error {
  constructor(
    message: string,
    readonly packageName: string,
  ) {
    super(message);
    this.name = 'BackbonePackageError';
  }
}

function isRegistered(kind: string, packageName?: string): boolean {
  try {
    const adapter = getBackbone(kind);
    return !packageName || adapter.package === undefined || adapter.package === packageName;
  } catch {
    return false;
  }
}

/**
 * Imports a backbone package so that it registers its adapters, resolving it as Node would from
 * each directory in `from` in turn (a run config's directory, then the working directory).
 * Does nothing when `kind` is already registered by that package.
 */
export async function importBackbonePackage(packageName: string, from: string[], kind?: string): Promise<void> {
  if (kind && isRegistered(kind, packageName)) return;
  const places = [...new Set(from.map((dir) => resolvePath(dir)))];
  let url: string | undefined;
  for (const dir of places) {
    try {
      url = resolveModule(packageName, pathToFileURL(`${dir}/`).href);
      break;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED') throw error;
    }
  }
  if (!url) {
    throw new BackbonePackageError(
      `backbone package ${packageName} is not installed (looked from ${places.join(' and ')}): run npm install ${packageName}`,
      packageName,
    );
  }
  try {
    await import(url);
  } catch (error) {
    throw new BackbonePackageError(`importing backbone package ${packageName} (${url}) failed: ${(error as Error).message}`, packageName);
  }
  if (kind && !isRegistered(kind, packageName)) {
    throw new BackbonePackageError(
      `${packageName} was imported but registers no backbone "${kind}" (registered: ${registeredBackbones().join(', ')}); check backbone.kind`,
      packageName,
    );
  }
}

/** Builds the backbone a (parsed) run config names; its source (kind, package, options) is saved with the model. */
export function createBackbone(config: BackboneConfig, seed: number): SegmentationBackbone {
  return createRegisteredBackbone(config.kind, config.options, { seed });
}
