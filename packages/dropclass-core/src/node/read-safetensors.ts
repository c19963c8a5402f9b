import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { type StateDict, WeightFileError, parseSafetensors } from '../weights/safetensors.js';

/**
 * Reads a `.safetensors` weight file from disk (see `parseSafetensors`). A PyTorch pickle
 * (`.pth`, `.pt`, `.bin`, `.ckpt`) is refused with the one-line conversion to run where PyTorch is.
 */
export async function readSafetensors(file: string): Promise<{ tensors: StateDict; metadata: Record<string, string> }> {
  const ext = extname(file).toLowerCase();
  if (['.pth', '.pt', '.bin', '.ckpt', '.tar'].includes(ext)) {
    throw new WeightFileError(
      file,
      `is a PyTorch pickle (${ext}), which cannot be read without Python`,
      `Convert it once where PyTorch is installed: python3 -c "import torch, safetensors.torch as st; sd = torch.load('${file}', map_location='cpu'); st.save_file({k: v.contiguous() for k, v in sd.get('state_dict', sd).items()}, '${file.slice(0, -ext.length)}.safetensors')" (pip install safetensors), then give the .safetensors file`,
    );
  }
  const bytes = await readFile(file).catch((error: NodeJS.ErrnoException) => {
    throw new WeightFileError(file, `cannot be read (${error.code ?? error.message})`, 'Check the path; it is taken relative to the run config');
  });
  return parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file);
}
