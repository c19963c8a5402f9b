#!/usr/bin/env python3
"""PyTorch twin of a DropClass training run, for `dropclass parity`.

usage: parity_twin.py DIR teacher|free32|free64

DIR holds what `dropclass parity` wrote: manifest.json (network, recipe, weight list, and for every
step the class that was dropped), states.bin (before every step and after the last: the weights and
batch-norm statistics in the manifest's order and tfjs layouts, then the momentum buffer of every
trainable weight; float32), images.bin (float32 NHWC batches) and labels.bin (int32). The twin
builds the same network as a PyTorch user would write it (nn.Conv2d with symmetric padding,
nn.BatchNorm2d, F.interpolate(align_corners=False), max pooling; the DropClass head and objective
written from the method's definition) and trains it with torch.optim.SGD on the same batches with
the same dropped classes:
- teacher: every step again from our state before it, in float32 and in float64; writes
  torch-teacher.json (per step: the loss terms, and how far our updated weights and statistics and
  PyTorch float32's are from the float64 step, relative to the float64 update);
- free32, free64: the whole run from the initial weights; writes torch-free32.json / torch-free64.json
  (the loss terms of every step).

Needs PyTorch (Debian: apt-get install python3-torch, run with /usr/bin/python3) and numpy.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE = 255
BN_EPS = 1e-5
BN_MOMENTUM = 0.1  # weight of the new batch in the moving statistics (PyTorch's default)


def conv_bn_relu(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM), nn.ReLU()]


class UNet(nn.Module):
    """Per level two 3x3 conv + BN + ReLU; 2x2 max-pool down; bilinear x2 up, concatenation with the
    skip, two 3x3 conv + BN + ReLU; optionally a final 3x3 conv + BN + ReLU to `featureChannels`."""

    def __init__(self, base=16, depth=4, upsampling='bilinear', featureChannels=None, inputChannels=3):
        super().__init__()
        if upsampling != 'bilinear':
            raise SystemExit(f'the twin builds U-Nets with bilinear upsampling, not {upsampling!r}')
        ch = [base * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([nn.Sequential(*conv_bn_relu(inputChannels, ch[0]), *conv_bn_relu(ch[0], ch[0]))])
        for i in range(1, depth + 1):
            self.down.append(nn.Sequential(*conv_bn_relu(ch[i - 1], ch[i]), *conv_bn_relu(ch[i], ch[i])))
        self.up = nn.ModuleList(
            [nn.Sequential(*conv_bn_relu(ch[i + 1] + ch[i], ch[i]), *conv_bn_relu(ch[i], ch[i])) for i in reversed(range(depth))]
        )
        self.final = nn.Sequential(*conv_bn_relu(ch[0], featureChannels)) if featureChannels else None
        self.channels = featureChannels or ch[0]

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = block(torch.cat([F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False), skip], 1))
        return self.final(x) if self.final is not None else x


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block, with the dilation DeepLabV3 gives the later stages."""

    def __init__(self, cin, cout, stride, first_dilation, dilation):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=first_dilation, dilation=first_dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


class DeepLabV3(nn.Module):
    """torchvision's deeplabv3 structure on a ResNet-18/34 encoder: dilated later stages, ASPP with a
    1x1 branch, three dilated 3x3 branches and image pooling, 1x1 projection (no dropout)."""

    def __init__(self, layout='resnet18', width=1, outputStride=16, asppChannels=None, headConv=False, inputChannels=3):
        super().__init__()
        ch = lambda c: max(4, round(c * width))
        aspp = asppChannels or ch(256)
        if layout not in ('resnet18', 'resnet34'):
            raise SystemExit(f'the twin builds DeepLabV3 on resnet18 and resnet34 (basic blocks), not {layout!r}')
        blocks = {'resnet18': [2, 2, 2, 2], 'resnet34': [3, 4, 6, 3]}[layout]
        bn = lambda c: nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.stem = nn.Sequential(nn.Conv2d(inputChannels, ch(64), 7, 2, padding=3, bias=False), bn(ch(64)), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1))
        stages = [(ch(64), 1, False), (ch(128), 2, False), (ch(256), 2, outputStride == 8), (ch(512), 2, True)]
        layers, cin, dilation = [], ch(64), 1
        for (cout, stride, dilate), n in zip(stages, blocks):
            previous = dilation
            if dilate:
                dilation *= stride
                stride = 1
            for b in range(n):
                layers.append(BasicBlock(cin, cout, stride if b == 0 else 1, previous if b == 0 else dilation, dilation))
                cin = cout
        self.encoder = nn.Sequential(*layers)
        rates = [6, 12, 18] if outputStride == 16 else [12, 24, 36]
        self.branches = nn.ModuleList([nn.Sequential(nn.Conv2d(cin, aspp, 1, bias=False), bn(aspp), nn.ReLU())])
        for r in rates:
            self.branches.append(nn.Sequential(nn.Conv2d(cin, aspp, 3, padding=r, dilation=r, bias=False), bn(aspp), nn.ReLU()))
        self.pool = nn.Sequential(nn.Conv2d(cin, aspp, 1, bias=False), bn(aspp), nn.ReLU())
        self.project = nn.Sequential(nn.Conv2d(5 * aspp, aspp, 1, bias=False), bn(aspp), nn.ReLU())
        # torchvision's DeepLabHead: a 3x3 conv + BN + ReLU before the classifier
        self.head = nn.Sequential(nn.Conv2d(aspp, aspp, 3, padding=1, bias=False), bn(aspp), nn.ReLU()) if headConv else None
        self.channels = aspp

    def forward(self, x):
        x = self.encoder(self.stem(x))
        pooled = self.pool(F.adaptive_avg_pool2d(x, 1)).expand(-1, -1, x.shape[2], x.shape[3])
        features = self.project(torch.cat([b(x) for b in self.branches] + [pooled], 1))
        return self.head(features) if self.head is not None else features


class Head(nn.Module):
    """The DropClass head: classifier W [C,K], b; feature-selection 1x1 conv C->C + BN + ReLU."""

    def __init__(self, channels, num_classes, dropclass):
        super().__init__()
        self.classifier = nn.Conv2d(channels, num_classes, 1)
        self.dropclass = dropclass
        if dropclass:
            self.selection = nn.Conv2d(channels, channels, 1)
            self.bn = nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)

    def losses(self, A, y, z, t, alpha):
        logits = self.classifier(A)
        ce = cross_entropy(logits, y)
        zero = ce.new_zeros(())
        if not self.dropclass:
            return dict(lossCe=ce, lossDrop=zero, lossSup=zero, total=ce)
        K = logits.shape[1]
        keep = torch.ones(K, dtype=A.dtype)
        if z >= 0:
            keep[z] = 0
        importance = F.relu(self.classifier.weight[:, :, 0, 0])  # [K, C]: row c is relu(W[:, c])
        s = (importance * keep[:, None]).sum(0) / keep.sum()
        A_drop = F.relu(self.bn(self.selection(A * s[None, :, None, None])))
        logits_drop = self.classifier(A_drop)
        y_drop = y.clone()
        if z >= 0:
            y_drop[y_drop == z] = IGNORE
        ce_drop = cross_entropy(logits_drop, y_drop)
        sup = F.softmax(logits_drop, 1)[:, z].mean() if z >= 0 else zero
        total = (1 - t) * ce + t * ce_drop + alpha * sup
        return dict(lossCe=ce, lossDrop=ce_drop, lossSup=sup, total=total)


def cross_entropy(logits, y):
    if logits.shape[2:] != y.shape[1:]:
        logits = F.interpolate(logits, size=y.shape[1:], mode='bilinear', align_corners=False)
    if not (y != IGNORE).any():
        return logits.sum() * 0
    return F.cross_entropy(logits, y, ignore_index=IGNORE)


class Network(nn.Module):
    def __init__(self, manifest):
        super().__init__()
        kind, options = manifest['backbone']['kind'], dict(manifest['backbone'].get('options', {}))
        if kind == 'unet':
            self.backbone = UNet(**options)
        elif kind == 'deeplabv3':
            self.backbone = DeepLabV3(**options)
        else:
            raise SystemExit(f'the twin knows the unet and deeplabv3 backbones, not {kind!r}')
        self.head = Head(self.backbone.channels, manifest['numClasses'], manifest['dropclass'])

    def ordered(self):
        """Convolutions and batch norms in the order their layers are created in the tfjs network, then the head."""
        return [m for m in self.backbone.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))] + [self.head]


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
    modules = network.ordered()
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
    lr = recipe['learningRate'] * max(0.0, 1 - step / recipe['iterations']) ** recipe['polyPower']
    for group in optimizer.param_groups:
        group['lr'] = lr
    dtype = next(network.parameters()).dtype
    optimizer.zero_grad()
    terms = network.head.losses(network.backbone(x.to(dtype)), y, record['droppedClass'], step / recipe['iterations'], alpha)
    terms['total'].backward()
    optimizer.step()
    return {k: float(v) for k, v in terms.items()}


def build(manifest, dtype):
    network = Network(manifest).to(dtype)
    network.train()
    recipe = manifest['recipe']
    optimizer = torch.optim.SGD(network.parameters(), lr=recipe['learningRate'], momentum=recipe['momentum'], weight_decay=recipe['weightDecay'])
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
