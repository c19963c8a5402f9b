/** An RGB colour, each channel in 0..255. */
export type Rgb = [number, number, number];

/**
 * The colours a class map is drawn with when its dataset gives none: one distinct colour per class
 * (golden-angle hues), the same for `dropclass predict`, overlays and an exported model's metadata.
 */
export function defaultPalette(count: number): Rgb[] {
  return Array.from({ length: count }, (_, i) => {
    const h = (i * 137.508) % 360;
    const f = (n: number) => {
      const k = (n + h / 30) % 12;
      return Math.round(255 * (0.55 - 0.45 * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
    };
    return [f(0), f(8), f(4)] as Rgb;
  });
}
