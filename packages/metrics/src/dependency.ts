import { type SegmentationResult, nanMean } from './confusion.js';
import { heatmapSpec, renderChart } from './charts.js';
import { percent, renderTable } from './table.js';

export interface DependencyMatrix {
  classNames: string[];
  /** Entry (c, d): IoU of class d as is minus its IoU with class c's features removed. */
  matrix: number[][];
  /** The diagonal: each class's own IoU drop when its features are removed (how strong the intervention is). */
  selfDrop: number[];
  /** Mean of the off-diagonal entries: how much classes lean on other classes' features. */
  meanOffDiagonalDrop: number;
  /** Per suppressed class: mean drop it causes in the other classes. */
  dropCausedBy: number[];
  /** Per class: mean drop it suffers when another class is suppressed. */
  dropSufferedBy: number[];
}

/**
 * The class-dependency matrix from an evaluation as is and one per class whose features were
 * removed (`suppressed[c]` = evaluated with class c's features removed, by the same intervention
 * for every model compared).
 */
export function dependencyMatrix(baseline: SegmentationResult, suppressed: SegmentationResult[], classNames: string[]): DependencyMatrix {
  const k = baseline.numClasses;
  if (suppressed.length !== k || classNames.length !== k) {
    throw new RangeError(`a ${k}-class dependency matrix needs ${k} suppressed results and class names, got ${suppressed.length} and ${classNames.length}`);
  }
  const matrix = suppressed.map((s) => baseline.iou.map((iou, d) => iou - s.iou[d]));
  const off = (c: number) => matrix[c].filter((_, d) => d !== c);
  const column = (d: number) => matrix.map((row) => row[d]).filter((_, c) => c !== d);
  return {
    classNames,
    matrix,
    selfDrop: matrix.map((row, c) => row[c]),
    meanOffDiagonalDrop: nanMean(matrix.flatMap((_, c) => off(c))),
    dropCausedBy: matrix.map((_, c) => nanMean(off(c))),
    dropSufferedBy: baseline.iou.map((_, d) => nanMean(column(d))),
  };
}

export function formatDependency(dep: DependencyMatrix, format: 'terminal' | 'markdown'): string {
  const header = ['suppressed \\ class', ...dep.classNames, 'mean drop caused'];
  const rows = dep.matrix.map((row, c) => [dep.classNames[c], ...row.map((v) => percent(v)), percent(dep.dropCausedBy[c])]);
  rows.push(['mean drop suffered', ...dep.dropSufferedBy.map((v) => percent(v)), percent(dep.meanOffDiagonalDrop)]);
  return `${renderTable(header, rows, format, ['left'])}\n\nmean off-diagonal IoU drop: ${percent(dep.meanOffDiagonalDrop, 2)} points; mean own-class drop (diagonal): ${percent(nanMean(dep.selfDrop), 2)} points`;
}

export function renderDependencyHeatmap(dep: DependencyMatrix, title = 'Class dependency: IoU drop (points) when a class is suppressed'): Promise<Buffer> {
  return renderChart(heatmapSpec(dep.matrix, { classNames: dep.classNames, title, rowTitle: 'suppressed class', columnTitle: 'evaluated class', valueTitle: 'IoU drop' }));
}
