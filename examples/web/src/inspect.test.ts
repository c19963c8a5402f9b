import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { FileProblem, inspectImageFile, pngTruncation } from './inspect.js';

const image = (format: 'png' | 'jpeg' | 'webp' | 'gif', width = 40, height = 30) =>
  sharp({ create: { width, height, channels: 3, background: { r: 200, g: 90, b: 30 } } })
    .toFormat(format)
    .toBuffer()
    .then((b) => new Uint8Array(b));

async function problem(bytes: Uint8Array, name: string): Promise<FileProblem> {
  try {
    await inspectImageFile(bytes, name);
  } catch (error) {
    if (error instanceof FileProblem) return error;
    throw error;
  }
  throw new Error(`${name} was accepted`);
}

describe('inspectImageFile', () => {
  let png: Uint8Array;
  beforeAll(async () => {
    png = await image('png');
  });

  it('accepts whole images with their format and size, and notes a format named by another extension', async () => {
    expect(await inspectImageFile(png, 'a.png')).toEqual({ format: 'PNG', mime: 'image/png', width: 40, height: 30, note: undefined });
    expect(await inspectImageFile(await image('jpeg'), 'b.jpg')).toMatchObject({ format: 'JPEG', width: 40, height: 30 });
    expect(await inspectImageFile(await image('webp'), 'c.webp')).toMatchObject({ format: 'WebP', width: 40, height: 30 });
    expect(await inspectImageFile(await image('gif'), 'd.gif')).toMatchObject({ format: 'GIF', width: 40, height: 30 });
    expect((await inspectImageFile(await image('jpeg'), 'photo.png')).note).toBe('a JPEG named .png');
  });

  it('gives a text file, a renamed file and a truncated PNG each their own message', async () => {
    const text = new TextEncoder().encode('name,score\nada,3\n');
    const notes = await problem(text, 'notes.txt');
    expect(notes.kind).toBe('text');
    expect(notes.message).toBe('notes.txt is a text file, not an image: it begins "name,score"; pick a PNG, JPEG, WebP, GIF, BMP or AVIF image');

    const fake = await problem(text, 'fake.png');
    expect(fake.kind).toBe('renamed');
    expect(fake.message).toMatch(/^fake\.png is named like a PNG image but holds text \(it begins "name,score"\), not PNG data \(a PNG file begins 89 50 4E 47/);

    const zip = await problem(Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 8, 0, ...new Array(40).fill(0)]), 'holiday.jpg');
    expect(zip.kind).toBe('renamed');
    expect(zip.message).toMatch(/^holiday\.jpg is named like a JPEG image but holds a ZIP file \(application\/zip\)/);

    const cut = await problem(png.subarray(0, png.length - 30), 'cut.png');
    expect(cut.kind).toBe('truncated');
    expect(cut.message).toMatch(/^cut\.png is a 40x30 PNG that is cut short: its data stops after \d+ bytes, inside its I[DE][AN][TD] chunk at byte \d+.*download or export it again$/);
  });

  it('names other problems: empty, unknown bytes, formats browsers do not decode, truncated JPEG, over the decode limit', async () => {
    expect((await problem(new Uint8Array(0), 'empty.png')).message).toMatch(/^empty\.png is empty \(0 bytes\)/);
    const noise = Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 200) % 256);
    expect((await problem(noise, 'blob.bin')).message).toMatch(/^blob\.bin is not a file format the page knows \(its first bytes are C8 ED 12 37/);
    const tiff = new Uint8Array(await sharp(png).tiff().toBuffer());
    expect((await problem(tiff, 'scan.tif')).message).toMatch(/^scan\.tif is a TIF image \(image\/tiff\), a format browsers do not decode: convert it to PNG or JPEG/);
    const jpeg = await image('jpeg');
    expect((await problem(jpeg.subarray(0, jpeg.length - 10), 'cut.jpg')).message).toMatch(/^cut\.jpg is a 40x30 JPEG that is cut short: .*no end-of-image marker \(FF D9\)/);
    // A PNG header that declares 9000x9000: refused before decoding.
    const big = png.slice();
    new DataView(big.buffer).setUint32(16, 9000);
    new DataView(big.buffer).setUint32(20, 9000);
    const tooLarge = await problem(big, 'huge.png');
    expect(tooLarge.kind).toBe('too-large');
    expect(tooLarge.message).toBe('huge.png is 9000x9000 (81.0 megapixels); the page decodes images of at most 40 megapixels: scale it down (to 6324x6324 or less) and pick that');
  });

  it('finds where a PNG stops', () => {
    expect(pngTruncation(png)).toBeUndefined();
    expect(pngTruncation(png.subarray(0, 8))).toBe('after the signature, with no end marker (IEND)');
    expect(pngTruncation(png.subarray(0, 33))).toBe('after its IHDR chunk, with no end marker (IEND)');
  });
});
