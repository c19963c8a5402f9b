import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const charts = fileURLToPath(new URL('./charts.ts', import.meta.url));

/** Renders two charts that differ only in their title's letters, in a process that sees no system font. */
function renderWithoutSystemFonts(): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'charts-'));
  const conf = join(dir, 'no-fonts.conf');
  writeFileSync(conf, `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig><cachedir>${dir}</cachedir></fontconfig>\n`);
  const script = join(dir, 'render.mts');
  writeFileSync(
    script,
    [
      `import { createHash } from 'node:crypto';`,
      `import { renderChart } from ${JSON.stringify(charts)};`,
      `for (const title of ['IIII', 'WWWW']) {`,
      `  const png = await renderChart({ title, data: { values: [{ a: 1 }] }, mark: 'point', encoding: { x: { field: 'a', type: 'quantitative' } } });`,
      `  console.log(createHash('sha1').update(png).digest('hex'));`,
      `}`,
    ].join('\n'),
  );
  const out = execFileSync(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, FONTCONFIG_FILE: conf }, encoding: 'utf8' });
  return out.trim().split('\n');
}

describe('renderChart', () => {
  it('draws letters with the bundled font on a machine without fonts (boxes would make both titles alike)', () => {
    const [i, w] = renderWithoutSystemFonts();
    expect(i).toMatch(/^[0-9a-f]{40}$/);
    expect(w).not.toBe(i);
  }, 60_000);
});
