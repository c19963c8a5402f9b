export { ConfusionMatrix, IGNORE_INDEX, nanMean, type ConfusionMatrixJSON, type IdArray, type SegmentationResult } from './confusion.js';
export {
  classReport,
  compareRuns,
  formatComparison,
  formatReport,
  groupOf,
  type ClassGroup,
  type ClassReport,
  type ClassRow,
  type ComparedValue,
  type ReportFormat,
  type ReportOptions,
  type RunComparison,
  type RunResults,
  type SplitComparison,
} from './report.js';
export { heatmapSpec, intervalsSpec, iouBarsSpec, renderChart, renderIntervals, renderIouBars, renderLineChart, type IntervalPoint } from './charts.js';
export { renderOverlay, type OverlayInput, type Rgb } from './overlay.js';
export { dependencyMatrix, formatDependency, renderDependencyHeatmap, type DependencyMatrix } from './dependency.js';
export { renderTable } from './table.js';
export {
  PerImageConfusion,
  bootstrapIoU,
  pairedBootstrapIoU,
  type BootstrapOptions,
  type Interval,
  type IouIntervals,
  type PairedInterval,
  type PerImageConfusionJSON,
} from './bootstrap.js';
