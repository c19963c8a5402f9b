import { getFloat16 } from '@petamoriken/float16';

/**
 * One tensor of a weight file, its values widened to float32 (the precision the model trains in):
 * `values` is row-major, `shape` as stored, `dtype` the stored element type.
 */
export interface StoredTensor {
  dtype: string;
  shape: number[];
  values: Float32Array;
}

/** Named tensors, as a PyTorch state dict holds them (`layer1.0.conv1.weight` -> tensor). */
export type StateDict = Map<string, StoredTensor>;

/** A weight file that cannot be read: names the file, what is wrong and what to do. */
export class WeightFileError extends Error {
  constructor(
    readonly file: string,
    problem: string,
    fix: string,
    /** One line per bad entry, listed after the fix. */
    details: string[] = [],
  ) {
    const shown = details.slice(0, 10).map((d) => `\n  ${d}`).join('');
    super(`${file}: ${problem}. ${fix}${details.length ? `:${shown}${details.length > 10 ? `\n  ... and ${details.length - 10} more` : ''}` : ''}`);
    this.name = 'WeightFileError';
  }
}

/** Bytes per element of each safetensors dtype this reader converts to float32. */
const ELEMENT_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** The largest JSON header read: a corrupt length must not allocate gigabytes (the format's own limit is 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

const REWRITE = 'Write the file again (in Python: safetensors.torch.save_file(state_dict, path)), or check that the download finished';

/**
 * Reads a `.safetensors` file held in memory: an 8-byte little-endian header length, a JSON header
 * of `{ name: { dtype, shape, data_offsets: [begin, end] } }` (plus an optional `__metadata__` of
 * strings), then the raw little-endian data. Every tensor is checked (dtype known, offsets inside
 * the data, size equal to its shape, no overlap) before any is converted; F64, F32, F16, BF16 and the
 * integer types are widened or narrowed to float32. `file` names the source in errors.
 */
export function parseSafetensors(bytes: Uint8Array, file = '<safetensors>'): { tensors: StateDict; metadata: Record<string, string> } {
  if (bytes.byteLength < 8) throw new WeightFileError(file, `is ${bytes.byteLength} bytes long, shorter than the 8-byte header length of a safetensors file`, REWRITE);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, bytes.byteLength - 8))) {
    throw new WeightFileError(
      file,
      `declares a ${headerLength}-byte header, but the file has ${bytes.byteLength - 8} bytes after the length (not a safetensors file, or a truncated one)`,
      `Give a .safetensors file; a PyTorch .pth/.pt file must be converted first. ${REWRITE}`,
    );
  }
  const dataStart = 8 + Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (error) {
    throw new WeightFileError(file, `its header is not valid UTF-8 JSON (${(error as Error).message})`, `Give a .safetensors file. ${REWRITE}`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new WeightFileError(file, 'its header is not a JSON object of tensors', REWRITE);
  const dataLength = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] = [];
  const problems: string[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      for (const [k, v] of Object.entries((entry ?? {}) as Record<string, unknown>)) if (typeof v === 'string') metadata[k] = v;
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string' || !(dtype in ELEMENT_BYTES)) {
      problems.push(`${name}: dtype ${JSON.stringify(dtype)} is not one of ${Object.keys(ELEMENT_BYTES).join(', ')}`);
      continue;
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      problems.push(`${name}: shape ${JSON.stringify(shape)} is not a list of sizes`);
      continue;
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0) || offsets[1] < offsets[0]) {
      problems.push(`${name}: data_offsets ${JSON.stringify(offsets)} is not [begin, end]`);
      continue;
    }
    const [begin, end] = offsets as [number, number];
    const expected = (shape as number[]).reduce((a, b) => a * b, 1) * ELEMENT_BYTES[dtype];
    if (end > dataLength) problems.push(`${name}: data_offsets [${begin}, ${end}] run past the end of the data (${dataLength} bytes)`);
    else if (end - begin !== expected) problems.push(`${name}: holds ${end - begin} bytes, but ${dtype} of shape [${(shape as number[]).join(', ')}] needs ${expected}`);
    else entries.push({ name, dtype, shape: shape as number[], begin, end });
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) problems.push(`${sorted[i].name}: its data overlaps ${sorted[i - 1].name}'s`);
  }
  if (problems.length) {
    throw new WeightFileError(file, `is not a valid safetensors file (${problems.length} bad tensor entr${problems.length === 1 ? 'y' : 'ies'})`, REWRITE, problems);
  }
  const tensors: StateDict = new Map();
  for (const e of entries) tensors.set(e.name, { dtype: e.dtype, shape: e.shape, values: toFloat32(view, dataStart + e.begin, e.end - e.begin, e.dtype) });
  return { tensors, metadata };
}

function toFloat32(view: DataView, offset: number, length: number, dtype: string): Float32Array {
  const n = length / ELEMENT_BYTES[dtype];
  const out = new Float32Array(n);
  // DataView reads: the data of a tensor need not be aligned to its element size.
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(offset + 4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(offset + 8 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = getFloat16(view, offset + 2 * i, true);
      break;
    case 'BF16': {
      // bfloat16 is the upper half of a float32.
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(offset + 2 * i, true) << 16;
      break;
    }
    case 'I64':
      for (let i = 0; i < n; i++) out[i] = Number(view.getBigInt64(offset + 8 * i, true));
      break;
    case 'I32':
      for (let i = 0; i < n; i++) out[i] = view.getInt32(offset + 4 * i, true);
      break;
    case 'I16':
      for (let i = 0; i < n; i++) out[i] = view.getInt16(offset + 2 * i, true);
      break;
    case 'I8':
      for (let i = 0; i < n; i++) out[i] = view.getInt8(offset + i);
      break;
    default:
      for (let i = 0; i < n; i++) out[i] = view.getUint8(offset + i);
  }
  return out;
}

/**
 * A `.safetensors` file of float32 tensors (`name -> { shape, values }`, row-major), as PyTorch's
 * `safetensors.torch.load_file` reads it: for taking weights named by `namedWeights` (converted
 * with `torchShape`'s layout) to PyTorch, or for writing weight files in tests.
 */
export function encodeSafetensors(tensors: Record<string, { shape: number[]; values: Float32Array }>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = Object.keys(metadata).length ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (t.values.length !== t.shape.reduce((a, b) => a * b, 1)) throw new RangeError(`encodeSafetensors: ${name} has ${t.values.length} values for shape [${t.shape.join(', ')}]`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * t.values.length] };
    offset += 4 * t.values.length;
  }
  let json = JSON.stringify(header);
  // The data starts 8-byte aligned, as the reference writer keeps it.
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8);
  const text = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + text.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  let at = 8 + text.length;
  for (const t of Object.values(tensors)) {
    for (let i = 0; i < t.values.length; i++) view.setFloat32(at + 4 * i, t.values[i], true);
    at += 4 * t.values.length;
  }
  return out;
}
