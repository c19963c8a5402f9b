import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DropClassModel } from '@dropclass/core';
import type { PairedDataset, Rgb } from '@dropclass/datasets';
import { type DependencyMatrix, dependencyMatrix, formatDependency, renderDependencyHeatmap } from '@dropclass/metrics';
import { evaluateDataset } from './evaluate.js';
import { Progress } from './progress.js';

/**
 * The class-dependency diagnostic: evaluates the split once as is and once with each class's
 * class-specific features suppressed; writes the matrix (Markdown, JSON) and its heatmap.
 */
export async function diagnoseDependency(
  model: DropClassModel,
  ds: PairedDataset,
  options: { mean: Rgb; std: Rgb; out: string; title: string },
): Promise<DependencyMatrix> {
  const progress = new Progress('dependency', model.numClasses + 1, 'class {name}');
  progress.start(0, { name: '-' });
  const base = (await evaluateDataset(model, ds, options)).result();
  const suppressed = [];
  for (let c = 0; c < model.numClasses; c++) {
    progress.update(c + 1, { name: ds.classNames[c] });
    suppressed.push((await evaluateDataset(model, ds, { ...options, droppedClass: c })).result());
  }
  progress.stop();
  const dep = dependencyMatrix(base, suppressed, ds.classNames);
  await mkdir(options.out, { recursive: true });
  await writeFile(join(options.out, 'dependency.json'), JSON.stringify(dep, (_, v) => (typeof v === 'number' && Number.isNaN(v) ? null : v), 2));
  await writeFile(join(options.out, 'dependency.md'), `# ${options.title}\n\n${formatDependency(dep, 'markdown')}\n\n![heatmap](dependency.png)\n`);
  await writeFile(join(options.out, 'dependency.png'), await renderDependencyHeatmap(dep, options.title));
  return dep;
}
