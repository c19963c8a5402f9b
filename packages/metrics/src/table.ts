export type Align = 'left' | 'right';

/** A plain-text table: Markdown (pipes and a rule) or aligned terminal columns. */
export function renderTable(header: string[], rows: string[][], format: 'markdown' | 'terminal', align: Align[] = []): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const cell = (v: string, i: number) => ((align[i] ?? (i === 0 ? 'left' : 'right')) === 'left' ? v.padEnd(widths[i]) : v.padStart(widths[i]));
  if (format === 'markdown') {
    const line = (r: string[]) => `| ${r.map(cell).join(' | ')} |`;
    const rule = `|${widths.map((w, i) => ((align[i] ?? (i === 0 ? 'left' : 'right')) === 'left' ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
    return [line(header), rule, ...rows.map(line)].join('\n');
  }
  const line = (r: string[]) => r.map(cell).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export const percent = (v: number, digits = 1) => (Number.isNaN(v) ? 'n/a' : (100 * v).toFixed(digits));
export const signed = (v: number, digits = 1) => (Number.isNaN(v) ? 'n/a' : `${v >= 0 ? '+' : ''}${(100 * v).toFixed(digits)}`);
