import { readFile } from 'node:fs/promises';
import { decode as decodePng } from 'fast-png';
import sharp from 'sharp';
import { DatasetError } from './errors.js';
import type { LabelMap, RawImage } from './types.js';

/** Decodes any image sharp reads to 8-bit RGB. */
export async function readImage(file: string): Promise<RawImage> {
  try {
    const { data, info } = await sharp(file).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: info.channels };
  } catch (error) {
    throw new DatasetError(file, `cannot be decoded (${(error as Error).message})`, 'a readable PNG or JPEG image', 'Replace or remove the file, or open the dataset with skipBad: true.');
  }
}

/**
 * Reads a label PNG as its stored values: palette indices for a palette PNG (the VOC masks) or the
 * grey level for a single-channel one. Colour label images are refused, since their values are not ids.
 */
export async function readLabelPng(file: string): Promise<LabelMap> {
  let png: ReturnType<typeof decodePng>;
  try {
    png = decodePng(await readFile(file));
  } catch (error) {
    throw new DatasetError(file, `cannot be decoded as PNG (${(error as Error).message})`, 'an 8-bit label PNG', 'Replace or remove the file, or open the dataset with skipBad: true.');
  }
  const channels = png.channels;
  if (png.depth !== 8 || (channels !== 1 && !(png.palette && channels === 1))) {
    const kind = png.palette ? 'palette' : `${channels}-channel`;
    throw new DatasetError(
      file,
      `is a ${png.depth}-bit ${kind} PNG`,
      'an 8-bit single-channel or palette PNG whose values are class ids (255 = ignore)',
      'Convert colour masks to class-id masks before training.',
    );
  }
  const data = png.data instanceof Uint8Array ? png.data : Uint8Array.from(png.data);
  return { data, width: png.width, height: png.height };
}
