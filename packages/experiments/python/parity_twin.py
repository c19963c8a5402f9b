#!/usr/bin/env python3
"""PyTorch twin of a DropClass training run, for `dropclass parity`.

usage: parity_twin.py DIR teacher|free32|free64

DIR holds what `dropclass parity` wrote: manifest.json (network, recipe, weight list, and for every
step the class that was dropped), states.bin (before every step and after the last: the weights and
batch-norm statistics in the manifest's order and tfjs layouts, then the momentum buffer of every
trainable weight; float32), images.bin (float32 NHWC batches) and labels.bin (int32). The twin
builds the same network as a PyTorch user would write it (the dropclass_twin package beside this
file: nn.Conv2d with symmetric padding, nn.BatchNorm2d, F.interpolate(align_corners=False), max
pooling, torchvision's ResNet blocks and ASPP; the DropClass head and objective written from the
method's definition) and trains it with torch.optim.SGD on the same batches with the same dropped
classes:
- teacher: every step again from our state before it, in float32 and in float64; writes
  torch-teacher.json (per step: the loss terms, and how far our updated weights and statistics and
  PyTorch float32's are from the float64 step, relative to the float64 update);
- free32, free64: the whole run from the initial weights; writes torch-free32.json / torch-free64.json
  (the loss terms of every step).

Needs PyTorch and torchvision (Debian: apt-get install python3-torch python3-torchvision, run with
/usr/bin/python3) and numpy.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

from dropclass_twin.networks import build_backbone
from dropclass_twin.objective import Head, SegmentationNetwork
from dropclass_twin.recipe import poly_lr, set_lr, sgd, train_step


def network_of(manifest):
    """The twin of the manifest's network: its backbone (unet or deeplabv3) and head."""
    backbone = manifest['backbone']
    return SegmentationNetwork(build_backbone(backbone['kind'], backbone.get('options')), manifest['numClasses'], manifest['dropclass'])


def ordered(network):
    """Convolutions and batch norms in the order their layers are created in the tfjs network, then the head."""
    return [m for m in network.backbone.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))] + [network.head]


def tensors_of(module):
    """The tfjs weights of one layer, in tfjs's order, as (tensor, to_torch, to_tfjs) triples."""
    conv = (lambda a: a.permute(3, 2, 0, 1), lambda t: t.permute(2, 3, 1, 0))  # [kh,kw,in,out] <-> [out,in,kh,kw]
    same = (lambda a: a, lambda t: t)
    matrix = (lambda a: a.t()[:, :, None, None], lambda t: t[:, :, 0, 0].t())  # [in,out] <-> [out,in,1,1]
    if isinstance(module, nn.Conv2d):
        return [(module.weight, *conv)] + ([(module.bias, *same)] if module.bias is not None else [])
    if isinstance(module, nn.BatchNorm2d):
        return [(module.weight, *same), (module.bias, *same), (module.running_mean, *same), (module.running_var, *same)]
    head = [(module.classifier.weight, *matrix), (module.classifier.bias, *same)]
    if module.dropclass:
        head += [(module.selection.weight, *matrix), (module.selection.bias, *same), (module.bn.weight, *same), (module.bn.bias, *same),
                 (module.bn.running_mean, *same), (module.bn.running_var, *same)]
    return head


CLASSES = {'Conv2D': nn.Conv2d, 'AtrousConv2D': nn.Conv2d, 'BatchNormalization': nn.BatchNorm2d, 'DropClassBatchNormalization': nn.BatchNorm2d}


def bind(network, entries):
    """Pairs every tfjs weight with the twin's tensor, checking layer kinds and shapes."""
    layers = []
    for e in entries:
        if not layers or layers[-1][0] != e['layer']:
            layers.append((e['layer'], e['layerClass'], []))
        layers[-1][2].append(e)
    modules = ordered(network)
    if len(modules) != len(layers):
        raise SystemExit(f"the tfjs network has {len(layers)} layers with weights, the twin {len(modules)}: {[l[1] for l in layers]}")
    bound = []
    for (name, cls, weights), module in zip(layers, modules):
        expected = CLASSES.get(cls, Head)
        if not isinstance(module, expected):
            raise SystemExit(f'layer {name} ({cls}) meets {type(module).__name__} in the twin')
        tensors = tensors_of(module)
        if len(tensors) != len(weights):
            raise SystemExit(f'layer {name} ({cls}) has {len(weights)} weights, the twin {len(tensors)}')
        for e, (t, to_torch, to_tfjs) in zip(weights, tensors):
            if list(to_tfjs(t).shape) != e['shape']:
                raise SystemExit(f"{e['name']}: tfjs shape {e['shape']}, twin {list(to_tfjs(t).shape)}")
            bound.append((e, t, to_torch, to_tfjs))
    return bound


def flat(bound):
    """The twin's weights in the manifest's order and tfjs layouts, as one float64 vector."""
    return np.concatenate([to_tfjs(t.detach()).double().numpy().ravel() for _, t, _, to_tfjs in bound])


def load(bound, optimizer, block, sizes, trainable):
    """Sets weights, statistics and momentum buffers from one state block written by `dropclass parity`."""
    offset = 0
    with torch.no_grad():
        for (e, t, to_torch, _), size in zip(bound, sizes):
            t.copy_(to_torch(torch.from_numpy(block[offset:offset + size].reshape(e['shape']).copy())).to(t.dtype))
            offset += size
        for (e, t, to_torch, _), size, is_trainable in zip(bound, sizes, trainable):
            if is_trainable:
                buffer = to_torch(torch.from_numpy(block[offset:offset + size].reshape(e['shape']).copy())).to(t.dtype)
                optimizer.state[t]['momentum_buffer'] = buffer.clone()
                offset += size


def take_step(network, optimizer, recipe, step, record, x, y, alpha):
    set_lr(optimizer, poly_lr(recipe['learningRate'], step, recipe['iterations'], recipe['polyPower']))
    dtype = next(network.parameters()).dtype
    terms = train_step(network, optimizer, x.to(dtype), y, record['droppedClass'], step / recipe['iterations'], alpha)
    return {k: float(v) for k, v in terms.items()}


def build(manifest, dtype):
    network = network_of(manifest).to(dtype)
    network.train()
    recipe = manifest['recipe']
    optimizer = sgd(network.parameters(), recipe['learningRate'], recipe['momentum'], recipe['weightDecay'])
    return network, optimizer, bind(network, manifest['weights'])


def main():
    out, mode = sys.argv[1], sys.argv[2]
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    manifest = json.load(open(os.path.join(out, 'manifest.json')))
    recipe, alpha = manifest['recipe'], manifest['alpha']
    sizes = [int(np.prod(e['shape'])) for e in manifest['weights']]
    trainable = [e['trainable'] for e in manifest['weights']]
    width = sum(sizes)
    states = np.fromfile(os.path.join(out, 'states.bin'), dtype=np.float32).reshape(manifest['steps'] + 1, -1)
    b, h, w, c = manifest['batchShape']
    images = np.fromfile(os.path.join(out, 'images.bin'), dtype=np.float32).reshape(-1, b, h, w, c)
    labels = np.fromfile(os.path.join(out, 'labels.bin'), dtype=np.int32).reshape(-1, b, h, w)
    batch = lambda s: (torch.from_numpy(images[s]).permute(0, 3, 1, 2), torch.from_numpy(labels[s]).long())
    is_trainable = np.concatenate([np.full(n, t) for n, t in zip(sizes, trainable)])

    if mode == 'teacher':
        # Every step again from our state before it, in float32 and float64.
        runs = {name: build(manifest, dtype) for name, dtype in (('torch32', torch.float32), ('torch64', torch.float64))}
        steps = []
        for step, record in enumerate(manifest['ours']):
            x, y = batch(step)
            row, after = {}, {}
            for name, (network, optimizer, bound) in runs.items():
                load(bound, optimizer, states[step], sizes, trainable)
                row[name] = take_step(network, optimizer, recipe, step, record, x, y, alpha)
                after[name] = flat(bound)
            before = states[step][:width].astype(np.float64)
            ours = states[step + 1][:width].astype(np.float64)
            for key, part in (('update', is_trainable), ('statistics', ~is_trainable)):
                moved = np.linalg.norm((after['torch64'] - before)[part]) or 1.0
                row[key] = {
                    'ours': float(np.linalg.norm((ours - after['torch64'])[part]) / moved),
                    'torch32': float(np.linalg.norm((after['torch32'] - after['torch64'])[part]) / moved),
                }
            steps.append(row)
        json.dump({'steps': steps}, open(os.path.join(out, 'torch-teacher.json'), 'w'))
    elif mode in ('free32', 'free64'):
        # The whole run from the same initial weights.
        network, optimizer, bound = build(manifest, torch.float32 if mode == 'free32' else torch.float64)
        load(bound, optimizer, states[0], sizes, [False] * len(sizes))
        losses = [take_step(network, optimizer, recipe, step, record, *batch(step), alpha) for step, record in enumerate(manifest['ours'])]
        json.dump({'losses': losses}, open(os.path.join(out, f'torch-{mode}.json'), 'w'))
    else:
        raise SystemExit(f'mode must be teacher, free32 or free64, not {mode!r}')


if __name__ == '__main__':
    main()
