"""The networks as a PyTorch user writes them, in the structure and order of the tfjs ones:

- `UNet`: per level two 3x3 conv + BN + ReLU; 2x2 max-pool down; bilinear x2 up, concatenation with
  the skip, two 3x3 conv + BN + ReLU; optionally a final 3x3 conv + BN + ReLU to `featureChannels`
  (the main job's network); channels base * 2^i.
- `DeepLabV3`: torchvision's ResNet-18/34/50 (its BasicBlock with the dilation DeepLabV3 gives the
  later stages, its Bottleneck), dilated for output stride 16 or 8, torchvision's ASPP (without the
  projection's dropout, as @dropclass/backbone-deeplab) and optionally torchvision's 3x3 head conv.
  Modules are named as torchvision's (`backbone.layer1.0.conv1`, `aspp.convs.4.1`, ...).

Every backbone returns its feature map A (NCHW) and says its width in `channels`; the options are
the tfjs backbones' (`build_backbone(kind, options)`, as a run config's `backbone`).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock as _BasicBlock, Bottleneck, conv1x1
from torchvision.models.segmentation.deeplabv3 import ASPP

from .objective import batch_norm


def conv_bn_relu(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), batch_norm(cout), nn.ReLU()]


def js_round(x):
    """JavaScript's Math.round (halves up), as the tfjs backbones round widths."""
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


class UNet(nn.Module):
    def __init__(self, base=16, depth=4, upsampling='bilinear', featureChannels=None, inputChannels=3, seed=None):
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


class BasicBlock(_BasicBlock):
    """torchvision's basic block with the dilation DeepLabV3 gives the later stages (torchvision's own
    refuses a dilation above 1): conv1 dilated by `first_dilation`, conv2 by `dilation`."""

    def __init__(self, inplanes, planes, stride=1, downsample=None, first_dilation=1, dilation=1):
        super().__init__(inplanes, planes, stride, downsample, norm_layer=batch_norm)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=first_dilation, dilation=first_dilation, bias=False)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=dilation, dilation=dilation, bias=False)


LAYOUTS = {'resnet18': ([2, 2, 2, 2], False), 'resnet34': ([3, 4, 6, 3], False), 'resnet50': ([3, 4, 6, 3], True)}


class ResNet(nn.Module):
    """torchvision's ResNet without avgpool and fc (conv1, bn1, relu, maxpool, layer1..layer4), with a
    width multiplier, stages 3 and 4 trading stride for dilation as the output stride asks."""

    def __init__(self, layout='resnet18', width=1, outputStride=32, inputChannels=3):
        super().__init__()
        if layout not in LAYOUTS:
            raise SystemExit(f'the twin builds ResNets resnet18, resnet34 and resnet50, not {layout!r}')
        blocks, bottleneck = LAYOUTS[layout]
        ch = lambda c: max(4, js_round(c * width))
        self.conv1 = nn.Conv2d(inputChannels, ch(64), 7, 2, padding=3, bias=False)
        self.bn1 = batch_norm(ch(64))
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        stages = [(ch(64), 1, False), (ch(128), 2, False), (ch(256), 2, outputStride == 8), (ch(512), 2, outputStride != 32)]
        cin, dilation = ch(64), 1
        for i, ((planes, stride, dilate), n) in enumerate(zip(stages, blocks)):
            previous = dilation
            if dilate:
                dilation *= stride
                stride = 1
            cout = planes * (Bottleneck.expansion if bottleneck else 1)
            layer = []
            for b in range(n):
                s = stride if b == 0 else 1
                down = nn.Sequential(conv1x1(cin, cout, s), batch_norm(cout)) if b == 0 and (s != 1 or cin != cout) else None
                if bottleneck:
                    layer.append(Bottleneck(cin, planes, s, down, dilation=previous if b == 0 else dilation, norm_layer=batch_norm))
                else:
                    layer.append(BasicBlock(cin, planes, s, down, previous if b == 0 else dilation, dilation))
                cin = cout
            setattr(self, f'layer{i + 1}', nn.Sequential(*layer))
        self.channels = cin

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class DeepLabV3(nn.Module):
    def __init__(self, layout='resnet18', width=1, outputStride=16, asppChannels=None, headConv=False, inputChannels=3, seed=None):
        super().__init__()
        if outputStride not in (8, 16):
            raise SystemExit(f'DeepLab outputStride must be 8 or 16, not {outputStride!r}')
        self.backbone = ResNet(layout, width, outputStride, inputChannels)
        aspp = asppChannels or max(4, js_round(256 * width))
        self.aspp = ASPP(self.backbone.channels, [6, 12, 18] if outputStride == 16 else [12, 24, 36], aspp)
        self.aspp.project[3] = nn.Identity()  # no dropout, as the tfjs network
        # torchvision's DeepLabHead: a 3x3 conv + BN + ReLU before the classifier
        self.head = nn.Sequential(nn.Conv2d(aspp, aspp, 3, padding=1, bias=False), batch_norm(aspp), nn.ReLU()) if headConv else None
        self.channels = aspp

    def forward(self, x):
        features = self.aspp(self.backbone(x))
        return self.head(features) if self.head is not None else features


def build_backbone(kind, options=None):
    """The backbone of a run config's `backbone` ({kind, options}): unet or deeplabv3."""
    options = dict(options or {})
    if kind == 'unet':
        return UNet(**options)
    if kind == 'deeplabv3':
        return DeepLabV3(**options)
    raise SystemExit(f'the twin knows the unet and deeplabv3 backbones, not {kind!r}')
