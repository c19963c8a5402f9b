import { type SegmentationResult, nanMean } from './confusion.js';
import { percent, renderTable, signed } from './table.js';

export type ClassGroup = 'frequent' | 'under-represented';
export type ReportFormat = 'terminal' | 'markdown' | 'json';

export interface ReportOptions {
  classNames: string[];
  /** Each class's share of the training pixels (0..1); decides the groups. */
  frequencies: number[];
  /** A class below this share of pixels is under-represented. Default 0.01. */
  rareThreshold?: number;
}

export interface ClassRow {
  name: string;
  group: ClassGroup;
  frequency: number;
  iou: number;
  accuracy: number;
}

export interface ClassReport {
  rows: ClassRow[];
  groups: Record<ClassGroup, { classes: string[]; mIoU: number }>;
  mIoU: number;
  pixelAccuracy: number;
  rareThreshold: number;
}

export function groupOf(frequency: number, threshold: number): ClassGroup {
  return frequency < threshold ? 'under-represented' : 'frequent';
}

function checkNames(result: SegmentationResult, options: ReportOptions): void {
  if (options.classNames.length !== result.numClasses || options.frequencies.length !== result.numClasses) {
    throw new RangeError(`a ${result.numClasses}-class result needs ${result.numClasses} class names and frequencies, got ${options.classNames.length} and ${options.frequencies.length}`);
  }
}

/** Per-class IoU and accuracy with the class's training frequency, grouped frequent / under-represented. */
export function classReport(result: SegmentationResult, options: ReportOptions): ClassReport {
  checkNames(result, options);
  const threshold = options.rareThreshold ?? 0.01;
  const rows = options.classNames.map((name, c) => ({
    name,
    group: groupOf(options.frequencies[c], threshold),
    frequency: options.frequencies[c],
    iou: result.iou[c],
    accuracy: result.accuracy[c],
  }));
  const group = (g: ClassGroup) => {
    const members = rows.filter((r) => r.group === g);
    return { classes: members.map((r) => r.name), mIoU: nanMean(members.map((r) => r.iou)) };
  };
  return { rows, groups: { frequent: group('frequent'), 'under-represented': group('under-represented') }, mIoU: result.mIoU, pixelAccuracy: result.pixelAccuracy, rareThreshold: threshold };
}

export function formatReport(report: ClassReport, format: ReportFormat): string {
  if (format === 'json') return JSON.stringify(report, (_, v) => (typeof v === 'number' && Number.isNaN(v) ? null : v), 2);
  const rows = report.rows.map((r) => [r.name, r.group, `${(100 * r.frequency).toFixed(2)}%`, percent(r.iou), percent(r.accuracy)]);
  rows.push(
    ['mean (frequent)', '', '', percent(report.groups.frequent.mIoU), ''],
    ['mean (under-represented)', '', '', percent(report.groups['under-represented'].mIoU), ''],
    ['mIoU', '', '', percent(report.mIoU), `pixel acc ${percent(report.pixelAccuracy)}`],
  );
  return renderTable(['class', 'group', 'train pixels', 'IoU %', 'acc %'], rows, format === 'markdown' ? 'markdown' : 'terminal', ['left', 'left']);
}

/** A named run's results on one or more splits (e.g. val, val-shifted). */
export interface RunResults {
  name: string;
  splits: Record<string, SegmentationResult>;
}

export interface ComparedValue {
  a: number;
  b: number;
  delta: number;
}

export interface SplitComparison {
  rows: (ClassRow & { a: number; b: number; delta: number })[];
  groups: Record<ClassGroup, ComparedValue>;
  mIoU: ComparedValue;
}

export interface RunComparison {
  a: string;
  b: string;
  rareThreshold: number;
  splits: Record<string, SplitComparison>;
}

const compared = (a: number, b: number): ComparedValue => ({ a, b, delta: b - a });

/** Per-class, per-group and mean IoU of run B against run A on every split both have. */
export function compareRuns(a: RunResults, b: RunResults, options: ReportOptions): RunComparison {
  const splits: Record<string, SplitComparison> = {};
  for (const split of Object.keys(a.splits).filter((s) => s in b.splits)) {
    const ra = classReport(a.splits[split], options);
    const rb = classReport(b.splits[split], options);
    splits[split] = {
      rows: ra.rows.map((row, c) => ({ ...row, ...compared(row.iou, rb.rows[c].iou) })),
      groups: {
        frequent: compared(ra.groups.frequent.mIoU, rb.groups.frequent.mIoU),
        'under-represented': compared(ra.groups['under-represented'].mIoU, rb.groups['under-represented'].mIoU),
      },
      mIoU: compared(ra.mIoU, rb.mIoU),
    };
  }
  if (Object.keys(splits).length === 0) throw new Error(`runs ${a.name} and ${b.name} share no evaluated split`);
  return { a: a.name, b: b.name, rareThreshold: options.rareThreshold ?? 0.01, splits };
}

export function formatComparison(comparison: RunComparison, format: ReportFormat): string {
  if (format === 'json') return JSON.stringify(comparison, (_, v) => (typeof v === 'number' && Number.isNaN(v) ? null : v), 2);
  const tableFormat = format === 'markdown' ? 'markdown' : 'terminal';
  const sections = Object.entries(comparison.splits).map(([split, s]) => {
    const rows = s.rows.map((r) => [r.name, r.group, `${(100 * r.frequency).toFixed(2)}%`, percent(r.a), percent(r.b), signed(r.delta)]);
    rows.push(
      ['mean (frequent)', '', '', percent(s.groups.frequent.a), percent(s.groups.frequent.b), signed(s.groups.frequent.delta)],
      ['mean (under-represented)', '', '', percent(s.groups['under-represented'].a), percent(s.groups['under-represented'].b), signed(s.groups['under-represented'].delta)],
      ['mIoU', '', '', percent(s.mIoU.a), percent(s.mIoU.b), signed(s.mIoU.delta)],
    );
    const title = format === 'markdown' ? `### ${split}` : `${split}:`;
    return `${title}\n${renderTable(['class', 'group', 'train pixels', `${comparison.a} IoU %`, `${comparison.b} IoU %`, 'delta'], rows, tableFormat, ['left', 'left'])}`;
  });
  return sections.join('\n\n');
}
