// What a picked file is, before the browser is asked to decode it: its format from its first bytes
// (`file-type`), its size from its header (`image-size`), and whether it is whole. Each problem
// gets its own message, naming the file, what was found, what was expected and what to do.
import { fileTypeFromBuffer } from 'file-type/core';
import { imageSize } from 'image-size';
import { DECODE_LIMIT } from './plan.js';

/** The kinds of file the page refuses, each with its own message. */
export type FileProblemKind = 'empty' | 'text' | 'not-image' | 'renamed' | 'unsupported-image' | 'truncated' | 'too-large' | 'undecodable';

/** A picked file the page cannot segment, and why. */
export class FileProblem extends Error {
  constructor(
    readonly kind: FileProblemKind,
    message: string,
  ) {
    super(message);
    this.name = 'FileProblem';
  }
}

/** What the page found out about an image file before decoding it. */
export interface ImageFileInfo {
  /** Format name as people say it (PNG, JPEG, ...). */
  format: string;
  mime: string;
  /** From the header, when the format's header gives it. */
  width?: number;
  height?: number;
  /** Something worth saying that does not stop the page (a JPEG named .png). */
  note?: string;
}

/** Formats Chromium, Firefox and Safari decode, by file-type's extension. */
const DECODABLE: Record<string, string> = { png: 'PNG', apng: 'PNG', jpg: 'JPEG', gif: 'GIF', webp: 'WebP', bmp: 'BMP', avif: 'AVIF', ico: 'ICO' };
/** File name extensions of those formats, and the format each names. */
const IMAGE_EXTENSIONS: Record<string, string> = { png: 'PNG', apng: 'PNG', jpg: 'JPEG', jpeg: 'JPEG', jpe: 'JPEG', jfif: 'JPEG', gif: 'GIF', webp: 'WebP', bmp: 'BMP', avif: 'AVIF', ico: 'ICO' };
const SIGNATURES: Record<string, string> = { PNG: '89 50 4E 47 0D 0A 1A 0A', JPEG: 'FF D8 FF', GIF: '47 49 46 38 ("GIF8")', WebP: '52 49 46 46 ("RIFF") ... 57 45 42 50 ("WEBP")', BMP: '42 4D ("BM")', AVIF: '... 66 74 79 70 ("ftyp")', ICO: '00 00 01 00' };
const PICK = 'pick a PNG, JPEG, WebP, GIF, BMP or AVIF image';

const extensionOf = (name: string) => /\.([^./\\]+)$/.exec(name)?.[1]?.toLowerCase() ?? '';
const hex = (bytes: Uint8Array, n = 8) => Array.from(bytes.subarray(0, n), (b) => b.toString(16).toUpperCase().padStart(2, '0')).join(' ');
const kib = (n: number) => (n < 1024 ? `${n} bytes` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`);
const u32 = (b: Uint8Array, at: number) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
const u32le = (b: Uint8Array, at: number) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
const ascii = (b: Uint8Array, from: number, to: number) => String.fromCharCode(...b.subarray(from, to));

/** The text of the file's first bytes when they read as text (UTF-8, almost no control characters); else undefined. */
export function asText(bytes: Uint8Array): string | undefined {
  const head = bytes.subarray(0, 4096);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: true });
  } catch {
    return undefined;
  }
  // eslint-disable-next-line no-control-regex
  const control = text.match(/[\u0000-\u0008\u000B\u000E-\u001F\u007F]/g)?.length ?? 0;
  return text.length > 0 && control <= text.length / 100 ? text : undefined;
}

/** Where a PNG stops short of its end marker (IEND), or undefined when it is whole. */
export function pngTruncation(bytes: Uint8Array): string | undefined {
  let at = 8;
  let last = 'the signature';
  while (at + 8 <= bytes.length) {
    const length = u32(bytes, at);
    const type = ascii(bytes, at + 4, at + 8);
    const end = at + 12 + length;
    if (end > bytes.length) return `inside its ${type} chunk at byte ${at}, which declares ${length} bytes of data (${end - bytes.length} bytes missing)`;
    if (type === 'IEND') return undefined;
    last = `its ${type} chunk`;
    at = end;
  }
  return `after ${last}, with no end marker (IEND)`;
}

/** Where another format stops short, or undefined when it looks whole (JPEG: an end-of-image marker; WebP, BMP: the size the header declares; GIF: its trailer). */
function truncation(format: string, bytes: Uint8Array): string | undefined {
  const n = bytes.length;
  switch (format) {
    case 'PNG':
      return pngTruncation(bytes);
    case 'JPEG': {
      for (let i = n - 2; i >= 2; i--) if (bytes[i] === 0xff && bytes[i + 1] === 0xd9) return undefined;
      return 'with no end-of-image marker (FF D9)';
    }
    case 'WebP': {
      const declared = u32le(bytes, 4) + 8;
      return declared > n ? `its header declares ${declared} bytes (${declared - n} missing)` : undefined;
    }
    case 'BMP': {
      const declared = u32le(bytes, 2);
      return declared > n ? `its header declares ${declared} bytes (${declared - n} missing)` : undefined;
    }
    case 'GIF': {
      let end = n - 1;
      while (end > 0 && bytes[end] === 0) end--;
      return bytes[end] === 0x3b ? undefined : 'with no trailer byte (3B)';
    }
    default:
      return undefined;
  }
}

/**
 * What `bytes` (the file `name`) is, when it is an image the page can decode; otherwise throws a
 * {@link FileProblem} that says what the file is instead and what to do.
 */
export async function inspectImageFile(bytes: Uint8Array, name: string): Promise<ImageFileInfo> {
  if (bytes.length === 0) throw new FileProblem('empty', `${name} is empty (0 bytes): it holds no image; pick the image file itself (${PICK})`);
  const extension = extensionOf(name);
  const named = IMAGE_EXTENSIONS[extension];
  const detected = await fileTypeFromBuffer(bytes);
  const format = detected && DECODABLE[detected.ext];
  if (!format) {
    const text = detected ? undefined : asText(bytes);
    const firstLine = text?.trim().split(/\r?\n/, 1)[0] ?? '';
    const quoted = JSON.stringify(firstLine.length > 40 ? `${firstLine.slice(0, 40)}…` : firstLine);
    if (named) {
      // Named like an image, but not one: a renamed file.
      const what = detected ? `a ${detected.ext.toUpperCase()} file (${detected.mime})` : text !== undefined ? `text (it begins ${quoted})` : `no format the page knows (its first bytes are ${hex(bytes)})`;
      throw new FileProblem(
        'renamed',
        `${name} is named like a ${named} image but holds ${what}, not ${named} data (a ${named} file begins ${SIGNATURES[named]}): ` +
          `it is another kind of file under an image's name; pick the original image instead (${PICK})`,
      );
    }
    if (detected?.mime.startsWith('image/')) {
      throw new FileProblem(
        'unsupported-image',
        `${name} is a ${detected.ext.toUpperCase()} image (${detected.mime}), a format browsers do not decode: convert it to PNG or JPEG and pick that`,
      );
    }
    if (text !== undefined) {
      const svg = /<svg[\s>]/i.test(text) ? ' (an SVG drawing: export it as PNG first)' : '';
      throw new FileProblem('text', `${name} is a text file${svg}, not an image: it begins ${quoted}; ${PICK}`);
    }
    const what = detected ? `a ${detected.ext.toUpperCase()} file (${detected.mime})` : `not a file format the page knows (its first bytes are ${hex(bytes)})`;
    throw new FileProblem('not-image', `${name} is ${what}, not an image; ${PICK}`);
  }
  let size: { width: number; height: number } | undefined;
  try {
    size = imageSize(bytes);
  } catch {
    size = undefined; // a header image-size cannot read: the browser's decoder says more
  }
  const dims = size ? `${size.width}x${size.height} ` : '';
  const cut = truncation(format, bytes);
  if (cut) {
    throw new FileProblem(
      'truncated',
      `${name} is a ${dims}${format} that is cut short: its data stops after ${kib(bytes.length)}, ${cut}. ` +
        'The file was not completely downloaded or copied: download or export it again',
    );
  }
  if (size && size.width * size.height > DECODE_LIMIT) {
    throw new FileProblem(
      'too-large',
      `${name} is ${size.width}x${size.height} (${(size.width * size.height / 1e6).toFixed(1)} megapixels); the page decodes images of at most ` +
        `${DECODE_LIMIT / 1e6} megapixels: scale it down (to ${fitWithin(size.width, size.height, DECODE_LIMIT)} or less) and pick that`,
    );
  }
  const note = named && named !== format ? `a ${format} named .${extension}` : undefined;
  return { format, mime: detected.mime, width: size?.width, height: size?.height, note };
}

/** The largest `width`x`height` of the same aspect within `pixels`, as "WxH". */
export function fitWithin(width: number, height: number, pixels: number): string {
  const scale = Math.min(1, Math.sqrt(pixels / (width * height)));
  return `${Math.floor(width * scale)}x${Math.floor(height * scale)}`;
}

/** The problem to report when the browser cannot decode a file that looked like a whole image. */
export function undecodable(name: string, info: ImageFileInfo, error: unknown): FileProblem {
  const reason = error instanceof Error ? error.message : String(error);
  const dims = info.width ? `${info.width}x${info.height} ` : '';
  return new FileProblem(
    'undecodable',
    `${name} looks like a whole ${dims}${info.format} but the browser could not decode it (${reason}): its data is damaged; ` +
      `open it in an image editor and save it again as PNG or JPEG, or pick another image`,
  );
}
