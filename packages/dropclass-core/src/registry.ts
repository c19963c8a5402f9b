import type { BackboneAdapter, CommonBackboneOptions, SegmentationBackbone } from './adapter.js';

// Kept on globalThis so that a plugin resolving its own copy of @dropclass/core registers into the
// same registry as the command line that imports it.
const KEY = Symbol.for('@dropclass/core/backbone-registry');
type AnyAdapter = BackboneAdapter<object>;
const registry: Map<string, AnyAdapter> = ((globalThis as Record<symbol, unknown>)[KEY] ??= new Map<string, AnyAdapter>()) as Map<string, AnyAdapter>;

/** Thrown when a backbone kind is not registered; names the registered kinds. */
export class UnknownBackboneError extends Error {
  constructor(
    readonly kind: string,
    readonly known: string[],
  ) {
    super(
      `no backbone "${kind}" is registered (known: ${known.length ? known.join(', ') : 'none'}); ` +
        'import the package that registers it (or name it in the run config\'s backbone.package), or fix the name',
    );
    this.name = 'UnknownBackboneError';
  }
}

/**
 * Registers an adapter under its name, for `createBackbone` and the `dropclass` command line.
 * Adapter packages call it when imported. Registering the same name again from the same package
 * replaces the entry; a name taken by another package is refused.
 */
export function registerBackbone<Options extends object>(adapter: BackboneAdapter<Options>): void {
  if (typeof adapter?.name !== 'string' || !/^[a-z0-9][a-z0-9._-]*$/i.test(adapter.name)) {
    throw new TypeError(`registerBackbone: adapter name must be letters, digits, '.', '_' or '-', got ${JSON.stringify(adapter?.name)}`);
  }
  if (typeof adapter.create !== 'function' || typeof adapter.parseOptions !== 'function' || typeof adapter.defaults !== 'object') {
    throw new TypeError(`registerBackbone: adapter "${adapter.name}" must have defaults, parseOptions(raw) and create(options)`);
  }
  const existing = registry.get(adapter.name);
  if (existing && existing !== (adapter as AnyAdapter) && existing.package !== adapter.package) {
    throw new Error(
      `registerBackbone: the name "${adapter.name}" is already registered by ${existing.package ?? 'an adapter without a package'}; ` +
        `give the adapter from ${adapter.package ?? 'this package'} another name`,
    );
  }
  registry.set(adapter.name, adapter as AnyAdapter);
}

/** The adapter registered under `kind`; throws {@link UnknownBackboneError} naming the known kinds. */
export function getBackbone(kind: string): BackboneAdapter<object> {
  const adapter = registry.get(kind);
  if (!adapter) throw new UnknownBackboneError(kind, registeredBackbones());
  return adapter;
}

/** Names of the registered adapters, sorted. */
export function registeredBackbones(): string[] {
  return [...registry.keys()].sort();
}

/**
 * Builds a backbone of a registered kind from raw options (e.g. a run config's): the adapter checks
 * them and fills in its defaults; the result records where it came from (`source`), which a saved
 * model keeps.
 */
export function createBackbone(kind: string, rawOptions: unknown = {}, common: CommonBackboneOptions = {}): SegmentationBackbone {
  const adapter = getBackbone(kind);
  const options = adapter.parseOptions(rawOptions ?? {}) as Record<string, unknown>;
  const backbone = adapter.create({ ...options, ...common });
  return { ...backbone, source: { kind, ...(adapter.package ? { package: adapter.package } : {}), options } };
}
