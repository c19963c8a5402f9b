#!/usr/bin/env python3
"""PyTorch CPU anchor for `dropclass bench`: the same U-Net the bench builds with tfjs (double 3x3
conv+BN+ReLU per level, 2x2 max-pool down, bilinear x2 up + concat + double conv, with feature_channels
> 0 one more 3x3 conv+BN+ReLU to that width, 1x1 classifier; channels base*2^i), trained with and
without a DropClass head, timed per SGD step (momentum 0.9, weight decay 5e-4) on 2 threads.

Needs PyTorch: Debian's python3-torch (apt-get install python3-torch), run with /usr/bin/python3.
usage: /usr/bin/python3 torch_unet.py [batch] [size] [base] [depth] [classes] [steps] [feature_channels]  -> prints JSON"""
import json, sys, time
try:
    import torch, torch.nn as nn, torch.nn.functional as F
except ImportError as error:
    sys.stderr.write("torch_unet.py: PyTorch is not importable by %s (%s); install Debian's python3-torch "
                     "(apt-get install python3-torch) and run the anchor with /usr/bin/python3\n" % (sys.executable, error))
    sys.exit(3)
torch.set_num_threads(2)
def dc(i, o): return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(), nn.Conv2d(o, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU())
class UNet(nn.Module):
    def __init__(s, base, depth, k, dropclass, feature_channels=0):
        super().__init__()
        ch = [base * 2 ** i for i in range(depth + 1)]
        s.down = nn.ModuleList([dc(3, ch[0])] + [dc(ch[i], ch[i + 1]) for i in range(depth)])
        s.up = nn.ModuleList([dc(ch[i + 1] + ch[i], ch[i]) for i in reversed(range(depth))])
        f = feature_channels or ch[0]
        s.widen = nn.Sequential(nn.Conv2d(ch[0], f, 3, padding=1, bias=False), nn.BatchNorm2d(f), nn.ReLU()) if feature_channels else nn.Identity()
        s.cls = nn.Conv2d(f, k, 1)
        s.dropclass = dropclass
        if dropclass:
            s.sel = nn.Sequential(nn.Conv2d(f, f, 1), nn.BatchNorm2d(f), nn.ReLU())
    def forward(s, x, y=None, t=0.5, z=None):
        skips = []
        for i, d in enumerate(s.down):
            x = d(x if i == 0 else F.max_pool2d(x, 2)); skips.append(x)
        for u, sk in zip(s.up, reversed(skips[:-1])):
            x = u(torch.cat([F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False), sk], 1))
        x = s.widen(x)
        logits = s.cls(x)
        if not s.dropclass:
            return F.cross_entropy(logits, y, ignore_index=255)
        K = s.cls.weight.shape[0]
        keep = torch.ones(K); keep[z] = 0
        w = F.relu(s.cls.weight[:, :, 0, 0] * keep[:, None]).sum(0) / keep.sum()
        ld = s.cls(s.sel(x * w[None, :, None, None]))
        yd = y.clone(); yd[yd == z] = 255
        return (1 - t) * F.cross_entropy(logits, y, ignore_index=255) + t * F.cross_entropy(ld, yd, ignore_index=255) \
            + 10 * F.softmax(ld, 1)[:, z].mean()
def run(batch, size, base, depth, k, steps, dropclass, feature_channels=0):
    torch.manual_seed(0)
    m = UNet(base, depth, k, dropclass, feature_channels); opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, size, size); y = torch.randint(0, k, (batch, size, size))
    ts = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        opt.zero_grad(); l = m(x, y, 0.5, i % k) if dropclass else m(x, y); l.backward(); opt.step()
        ts.append(time.perf_counter() - t0)
    ts = sorted(ts[2:])
    return dict(params=sum(p.numel() for p in m.parameters()), median_ms=1000 * ts[len(ts) // 2])
if __name__ == '__main__':
    a = [int(v) for v in sys.argv[1:]] + [4, 128, 16, 4, 8, 10, 0][len(sys.argv) - 1:]
    batch, size, base, depth, k, steps, f = a[:7]
    print(json.dumps(dict(config=dict(batch=batch, size=size, base=base, depth=depth, classes=k, feature_channels=f, threads=2),
                          baseline=run(batch, size, base, depth, k, steps, False, f),
                          dropclass=run(batch, size, base, depth, k, steps, True, f))))
