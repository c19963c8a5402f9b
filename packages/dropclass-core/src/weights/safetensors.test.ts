import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFloat16 } from '@petamoriken/float16';
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../node/read-safetensors.js';
import { WeightFileError, encodeSafetensors, parseSafetensors } from './safetensors.js';

/** A safetensors file from raw entries: bytes as given, header as given (for well-formed and broken files alike). */
function file(header: Record<string, unknown>, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function bytesOf(dtype: 'F32' | 'F16' | 'BF16' | 'F64' | 'I64', values: number[]): Uint8Array {
  const size = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8 }[dtype];
  const out = new Uint8Array(values.length * size);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    if (dtype === 'F32') view.setFloat32(4 * i, v, true);
    else if (dtype === 'F16') setFloat16(view, 2 * i, v, true);
    else if (dtype === 'BF16') view.setUint16(2 * i, new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16, true);
    else if (dtype === 'F64') view.setFloat64(8 * i, v, true);
    else view.setBigInt64(8 * i, BigInt(v), true);
  });
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

describe('parseSafetensors', () => {
  it('reads F32, F16, BF16, F64 and I64 tensors (unaligned data too) as float32, and the metadata', () => {
    // A 1-byte U8 tensor first puts every later tensor off its natural alignment.
    const parts = [new Uint8Array([7]), bytesOf('F32', [1.5, -2.25, 3e-8, 1e6]), bytesOf('F16', [0.5, -1, 65504]), bytesOf('BF16', [1, -2.5, 3.140625]), bytesOf('F64', [0.1]), bytesOf('I64', [12345])];
    const offsets: [number, number][] = [];
    let at = 0;
    for (const p of parts) {
      offsets.push([at, at + p.length]);
      at += p.length;
    }
    const bytes = file(
      {
        __metadata__: { format: 'pt' },
        byte: { dtype: 'U8', shape: [1], data_offsets: offsets[0] },
        'layer1.0.conv1.weight': { dtype: 'F32', shape: [2, 2], data_offsets: offsets[1] },
        half: { dtype: 'F16', shape: [3], data_offsets: offsets[2] },
        brain: { dtype: 'BF16', shape: [3, 1], data_offsets: offsets[3] },
        double: { dtype: 'F64', shape: [], data_offsets: offsets[4] },
        'bn1.num_batches_tracked': { dtype: 'I64', shape: [], data_offsets: offsets[5] },
      },
      concat(parts),
    );
    const { tensors, metadata } = parseSafetensors(bytes, 'w.safetensors');
    expect(metadata).toEqual({ format: 'pt' });
    expect(tensors.get('byte')).toEqual({ dtype: 'U8', shape: [1], values: new Float32Array([7]) });
    expect(tensors.get('layer1.0.conv1.weight')!.shape).toEqual([2, 2]);
    expect(Array.from(tensors.get('layer1.0.conv1.weight')!.values)).toEqual([1.5, -2.25, Math.fround(3e-8), 1e6]);
    expect(Array.from(tensors.get('half')!.values)).toEqual([0.5, -1, 65504]);
    expect(Array.from(tensors.get('brain')!.values)).toEqual([1, -2.5, 3.140625]);
    expect(tensors.get('double')!.values[0]).toBeCloseTo(0.1, 7);
    expect(tensors.get('bn1.num_batches_tracked')!.values[0]).toBe(12345);
  });

  it('refuses a file shorter than its header length, naming the file and what to do', () => {
    expect(() => parseSafetensors(new Uint8Array([1, 2, 3]), 'tiny.safetensors')).toThrow(
      'tiny.safetensors: is 3 bytes long, shorter than the 8-byte header length of a safetensors file. Write the file again',
    );
    const good = file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, bytesOf('F32', [1]));
    expect(() => parseSafetensors(good.subarray(0, 20), 'cut.safetensors')).toThrow(/cut\.safetensors: declares a \d+-byte header, but the file has 12 bytes after the length \(not a safetensors file, or a truncated one\)/);
  });

  it('refuses a PyTorch pickle or any other file read as safetensors: its first 8 bytes are no header length', () => {
    const zip = new TextEncoder().encode('PK\u0003\u0004 archive/data.pkl ... a torch.save zip');
    expect(() => parseSafetensors(zip, 'model.bin')).toThrow(WeightFileError);
    expect(() => parseSafetensors(zip, 'model.bin')).toThrow('Give a .safetensors file; a PyTorch .pth/.pt file must be converted first');
  });

  it('refuses a header that is not JSON, or not an object', () => {
    const bad = new Uint8Array(8 + 5);
    new DataView(bad.buffer).setBigUint64(0, 5n, true);
    bad.set(new TextEncoder().encode('{nope'), 8);
    expect(() => parseSafetensors(bad, 'h.safetensors')).toThrow('h.safetensors: its header is not valid UTF-8 JSON');
    expect(() => parseSafetensors(file([1, 2] as unknown as Record<string, unknown>, new Uint8Array()), 'a.safetensors')).toThrow('a.safetensors: its header is not a JSON object of tensors');
  });

  it('lists every bad entry at once: offsets out of range, a size that does not match the shape, overlaps, unknown dtypes', () => {
    const bytes = file(
      {
        past: { dtype: 'F32', shape: [4], data_offsets: [0, 64] },
        short: { dtype: 'F32', shape: [3], data_offsets: [0, 8] },
        odd: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] },
        first: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        second: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
        noshape: { dtype: 'F32', shape: 'x', data_offsets: [0, 4] },
      },
      new Uint8Array(16),
    );
    let message = '';
    try {
      parseSafetensors(bytes, 'broken.safetensors');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('broken.safetensors: is not a valid safetensors file (5 bad tensor entries). Write the file again');
    expect(message).toContain('past: data_offsets [0, 64] run past the end of the data (16 bytes)');
    expect(message).toContain('short: holds 8 bytes, but F32 of shape [3] needs 12');
    expect(message).toContain('odd: dtype "Q4" is not one of F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL');
    expect(message).toContain("second: its data overlaps first's");
    expect(message).toContain('noshape: shape "x" is not a list of sizes');
  });
});

describe('readSafetensors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'safetensors-'));

  it('reads a file from disk', async () => {
    const path = join(dir, 'ok.safetensors');
    writeFileSync(path, file({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, bytesOf('F32', [4, 5])));
    const { tensors } = await readSafetensors(path);
    expect(Array.from(tensors.get('w')!.values)).toEqual([4, 5]);
  });

  it('refuses a PyTorch pickle by its name, with the conversion to run', async () => {
    await expect(readSafetensors(join(dir, 'resnet50.pth'))).rejects.toThrow(
      `${join(dir, 'resnet50.pth')}: is a PyTorch pickle (.pth), which cannot be read without Python. Convert it once where PyTorch is installed`,
    );
  });

  it('names a missing file', async () => {
    await expect(readSafetensors(join(dir, 'absent.safetensors'))).rejects.toThrow(`${join(dir, 'absent.safetensors')}: cannot be read (ENOENT)`);
  });
});

describe('encodeSafetensors', () => {
  it('writes what parseSafetensors reads back, with the data 8-byte aligned', () => {
    const bytes = encodeSafetensors({ 'conv1.weight': { shape: [2, 1, 1, 2], values: new Float32Array([1, -2, 3.5, 4]) }, b: { shape: [], values: new Float32Array([7]) } }, { format: 'pt' });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    const { tensors, metadata } = parseSafetensors(bytes);
    expect(metadata).toEqual({ format: 'pt' });
    expect(tensors.get('conv1.weight')).toEqual({ dtype: 'F32', shape: [2, 1, 1, 2], values: new Float32Array([1, -2, 3.5, 4]) });
    expect(tensors.get('b')!.values[0]).toBe(7);
    expect(() => encodeSafetensors({ bad: { shape: [3], values: new Float32Array(2) } })).toThrow('encodeSafetensors: bad has 2 values for shape [3]');
  });
});
