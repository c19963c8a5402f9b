import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import * as vega from 'vega';
import { type TopLevelSpec, compile } from 'vega-lite';
import type { RunComparison } from './report.js';

/** The charts' font, shipped with the package (dejavu-fonts-ttf), so a machine without fonts draws letters, not boxes. */
const CHART_FONT = 'DejaVu Sans';
let fontReady = false;

/**
 * Points fontconfig (which sharp's SVG renderer asks for fonts) at the bundled DejaVu fonts as well
 * as the system's: a fontconfig file in the temp folder that includes the system configuration (or
 * the one `FONTCONFIG_FILE` named) and adds the bundled folder. Runs once, before the first chart.
 */
function useBundledFont(): void {
  if (fontReady) return;
  fontReady = true;
  const fonts = join(dirname(createRequire(import.meta.url).resolve('dejavu-fonts-ttf/package.json')), 'ttf');
  const system = process.env.FONTCONFIG_FILE ?? '/etc/fonts/fonts.conf';
  const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const conf = [
    '<?xml version="1.0"?>',
    '<!DOCTYPE fontconfig SYSTEM "fonts.dtd">',
    '<fontconfig>',
    `  <include ignore_missing="yes">${escape(system)}</include>`,
    `  <dir>${escape(fonts)}</dir>`,
    `  <cachedir>${escape(join(tmpdir(), 'dropclass-fontconfig-cache'))}</cachedir>`,
    '</fontconfig>',
    '',
  ].join('\n');
  const file = join(tmpdir(), `dropclass-fonts-${createHash('sha1').update(conf).digest('hex').slice(0, 12)}.conf`);
  writeFileSync(file, conf);
  process.env.FONTCONFIG_FILE = file;
}

/** Renders a Vega-Lite spec to PNG without a browser: Vega draws SVG, sharp rasterises it, in the bundled font. */
export async function renderChart(spec: TopLevelSpec, density = 144): Promise<Buffer> {
  useBundledFont();
  const withFont = { ...spec, config: { font: CHART_FONT, ...spec.config } } as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(withFont).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return sharp(Buffer.from(svg), { density }).flatten({ background: '#ffffff' }).png().toBuffer();
}

const clean = (v: number) => (Number.isNaN(v) ? null : v);

/**
 * Per-class IoU of two runs side by side on one split, classes ordered by training frequency and
 * split into frequent / under-represented panels.
 */
export function iouBarsSpec(comparison: RunComparison, split: string): TopLevelSpec {
  const s = comparison.splits[split];
  if (!s) throw new Error(`the comparison has no split "${split}" (it has ${Object.keys(comparison.splits).join(', ')})`);
  const values = s.rows.flatMap((r) => [
    { class: r.name, group: r.group, frequency: r.frequency, run: comparison.a, iou: clean(r.a) },
    { class: r.name, group: r.group, frequency: r.frequency, run: comparison.b, iou: clean(r.b) },
  ]);
  return {
    title: `Per-class IoU on ${split}: ${comparison.a} vs ${comparison.b}`,
    data: { values },
    facet: { column: { field: 'group', type: 'nominal', title: null, sort: ['frequent', 'under-represented'] } },
    spec: {
      width: { step: 34 },
      height: 220,
      mark: 'bar',
      encoding: {
        x: { field: 'class', type: 'nominal', sort: { field: 'frequency', order: 'descending' }, title: null, axis: { labelAngle: -40 } },
        xOffset: { field: 'run', type: 'nominal', sort: [comparison.a, comparison.b] },
        y: { field: 'iou', type: 'quantitative', title: 'IoU', scale: { domain: [0, 1] } },
        color: { field: 'run', type: 'nominal', sort: [comparison.a, comparison.b], title: 'run', scale: { range: ['#9aa5b1', '#d9480f'] } },
      },
    },
    resolve: { scale: { x: 'independent' } },
  } as TopLevelSpec;
}

export function renderIouBars(comparison: RunComparison, split: string): Promise<Buffer> {
  return renderChart(iouBarsSpec(comparison, split));
}

/** A K x K heatmap with values printed in the cells. */
export function heatmapSpec(matrix: number[][], options: { classNames: string[]; title: string; rowTitle: string; columnTitle: string; valueTitle: string }): TopLevelSpec {
  const values = matrix.flatMap((row, r) => row.map((v, c) => ({ row: options.classNames[r], column: options.classNames[c], value: clean(v), label: Number.isNaN(v) ? '' : (100 * v).toFixed(1) })));
  const order = options.classNames;
  return {
    title: options.title,
    data: { values },
    width: { step: 40 },
    height: { step: 28 },
    encoding: {
      y: { field: 'row', type: 'nominal', sort: order, title: options.rowTitle },
      x: { field: 'column', type: 'nominal', sort: order, title: options.columnTitle, axis: { labelAngle: -40 } },
    },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'value', type: 'quantitative', title: options.valueTitle, scale: { scheme: 'redblue', reverse: true, domainMid: 0 } } } },
      { mark: { type: 'text', fontSize: 9 }, encoding: { text: { field: 'label' } } },
    ],
  } as TopLevelSpec;
}

/** Training curves: one line per series (e.g. the three loss terms of each run) against the step. */
export function renderLineChart(points: { step: number; value: number; series: string }[], options: { title: string; yTitle: string }): Promise<Buffer> {
  return renderChart({
    title: options.title,
    data: { values: points.filter((p) => Number.isFinite(p.value)) },
    width: 520,
    height: 240,
    mark: { type: 'line', interpolate: 'monotone' },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'value', type: 'quantitative', title: options.yTitle },
      color: { field: 'series', type: 'nominal', title: null },
    },
  } as TopLevelSpec);
}

/** One value with its interval, for `intervalsSpec`. */
export interface IntervalPoint {
  /** Category on the x axis (e.g. a class or a group mean). */
  label: string;
  /** Series drawn side by side (e.g. the model); one colour each. */
  series: string;
  estimate: number;
  lower: number;
  upper: number;
}

/**
 * Points with 95% interval bars, categories in the given order, series side by side; with `zeroLine`
 * a rule at 0 (for differences).
 */
export function intervalsSpec(points: IntervalPoint[], options: { title: string; yTitle: string; zeroLine?: boolean }): TopLevelSpec {
  const order = [...new Set(points.map((p) => p.label))];
  const series = [...new Set(points.map((p) => p.series))];
  const values = points.map((p) => ({ ...p, estimate: clean(p.estimate), lower: clean(p.lower), upper: clean(p.upper) }));
  const x = { field: 'label', type: 'nominal', sort: order, title: null, axis: { labelAngle: -40 } };
  const colour = {
    field: 'series',
    type: 'nominal',
    sort: series,
    title: null,
    scale: { range: ['#9aa5b1', '#d9480f', '#1c7ed6', '#2b8a3e', '#ae3ec9', '#f59f00', '#0ca678', '#e64980'] },
    legend: series.length > 1 ? { labelLimit: 320 } : null,
  };
  return {
    title: options.title,
    data: { values },
    // Each class gets about 88 pixels however many series share it (44 per series for one or two).
    width: { step: series.length > 2 ? Math.max(12, Math.round(88 / series.length)) : 44 },
    height: 240,
    layer: [
      ...(options.zeroLine ? [{ mark: { type: 'rule', color: '#495057' }, encoding: { y: { datum: 0 } } }] : []),
      { mark: { type: 'rule', strokeWidth: 2 }, encoding: { x, xOffset: { field: 'series', sort: series }, y: { field: 'lower', type: 'quantitative', title: options.yTitle }, y2: { field: 'upper' }, color: colour } },
      { mark: { type: 'point', filled: true, size: 50 }, encoding: { x, xOffset: { field: 'series', sort: series }, y: { field: 'estimate', type: 'quantitative' }, color: colour } },
    ],
  } as TopLevelSpec;
}

export function renderIntervals(points: IntervalPoint[], options: { title: string; yTitle: string; zeroLine?: boolean }): Promise<Buffer> {
  return renderChart(intervalsSpec(points, options));
}
