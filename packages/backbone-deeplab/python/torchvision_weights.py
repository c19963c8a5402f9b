#!/usr/bin/env python3
"""Writes torchvision's ResNets and DeepLabV3 with random weights as .safetensors, with their outputs.

usage: torchvision_weights.py OUT [NAME ...]

NAME is any of resnet18, resnet34, resnet50, deeplabv3_resnet50 (default: all). For each, builds
torchvision's own model class (no download: weights=None), gives every batch norm random scale and
offset and running statistics taken from train-mode passes over random images and then perturbed,
and writes to OUT:
- NAME.safetensors: the model's state dict, exactly as `model.state_dict()` names it;
- NAME-io.safetensors: `input` (float32 [2, 96, 96, 3], NHWC) and the eval-mode outputs on it:
  for a ResNet `features`, layer4's output [2, 3, 3, C] (NHWC); for DeepLabV3 `logits`, the
  classifier's output at output stride 8 [2, 12, 12, 21], and `out`, torchvision's output bilinearly
  upsampled to the input size [2, 96, 96, 21] (both NHWC).

The safetensors format is written here directly (an 8-byte little-endian header length, a JSON
header, then the raw little-endian data), so nothing beyond PyTorch and torchvision is needed
(Debian: apt-get install python3-torch python3-torchvision; run with /usr/bin/python3).
"""
import json
import os
import struct
import sys

import torch
import torchvision

DTYPES = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64', torch.int64: 'I64'}


def save_safetensors(tensors, path):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {'dtype': DTYPES[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode('utf-8')
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def randomise_norms(model, generator):
    """Random scale and offset, running statistics from train-mode passes, then perturbed."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for m in norms:
            m.weight.uniform_(0.5, 1.5, generator=generator)
            m.bias.normal_(0, 0.2, generator=generator)
            m.momentum = None  # cumulative average of the batches below
            m.reset_running_stats()
        model.train()
        for _ in range(3):
            model(torch.randn(4, 3, 96, 96, generator=generator))
        for m in norms:
            m.running_mean.add_(0.1 * torch.randn(m.running_mean.shape, generator=generator) * m.running_var.sqrt())
            m.running_var.mul_(torch.empty(m.running_var.shape).uniform_(0.8, 1.25, generator=generator))
            m.momentum = 0.1
    model.eval()


def build(name):
    if name == 'deeplabv3_resnet50':
        return torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    return getattr(torchvision.models, name)(weights=None)


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    out = sys.argv[1]
    names = sys.argv[2:] or ['resnet18', 'resnet34', 'resnet50', 'deeplabv3_resnet50']
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    for i, name in enumerate(names):
        generator = torch.Generator().manual_seed(100 + i)
        torch.manual_seed(100 + i)
        model = build(name)
        randomise_norms(model, generator)
        image = torch.randn(2, 3, 96, 96, generator=generator)
        with torch.no_grad():
            if name.startswith('deeplab'):
                features = model.backbone(image)['out']
                logits = model.classifier(features)
                io = {'logits': logits, 'out': model(image)['out']}
            else:
                trunk = torch.nn.Sequential(*list(model.children())[:-2])
                io = {'features': trunk(image)}
        save_safetensors(model.state_dict(), os.path.join(out, f'{name}.safetensors'))
        nhwc = {k: v.permute(0, 2, 3, 1) for k, v in {'input': image, **io}.items()}
        save_safetensors(nhwc, os.path.join(out, f'{name}-io.safetensors'))
        print(f'{name}: {sum(t.numel() for t in model.state_dict().values())} values', flush=True)


if __name__ == '__main__':
    main()
