#!/usr/bin/env python3
"""PyTorch CPU anchor for `dropclass bench`: the networks the bench builds with tfjs (the dropclass_twin
package beside this file), trained with and without the DropClass head, timed per SGD step (forward,
the objective, backward, the step; momentum 0.9, weight decay 5e-4).

Two forms:
- U-Net (the `default` and `main-job` configurations), on 2 threads, both modes in one process:
    torch_bench.py [batch] [size] [base] [depth] [classes] [steps] [feature_channels]
  prints {"config", "baseline": {"params", "median_ms"}, "dropclass": {...}}.
- One point of a configuration, in its own process so that its peak resident memory is its own:
    torch_bench.py --spec JSON
  with JSON {"task": "train" | "infer", "backbone": {"kind", "options"}, "classes", "dropclass",
  "threads"; for train "batch", "height", "width", "warmup", "steps"; for infer "repeats" and
  "images": [{"name", "height", "width", "window"?: [h, w], "stride"?: [h, w]}]}; prints for train
  {"medianMs", "stepsMs", "params", "maxRssMiB", ...}, for infer {"images": [{"name", "windows",
  "medianMs"}], "maxRssMiB", ...}. Inference is the eval-mode forward, logits brought to the window's
  size, windows placed and averaged as @dropclass/core's inferLogits does. Progress goes to stderr.

Needs PyTorch and torchvision: Debian's python3-torch and python3-torchvision
(apt-get install python3-torch python3-torchvision), run with /usr/bin/python3."""
import json
import math
import resource
import sys
import time

try:
    import torch
    import torchvision  # noqa: F401  (the DeepLabV3 encoder's blocks)
except ImportError as error:
    sys.stderr.write("torch_bench.py: PyTorch is not importable by %s (%s); install Debian's python3-torch "
                     "(apt-get install python3-torch python3-torchvision) and run the anchor with /usr/bin/python3\n" % (sys.executable, error))
    sys.exit(3)

from dropclass_twin.networks import UNet, build_backbone
from dropclass_twin.objective import ALPHA, SegmentationNetwork
from dropclass_twin.recipe import sgd, train_step


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def median(values):
    s = sorted(values)
    return s[len(s) // 2]


def params(network):
    return sum(p.numel() for p in network.parameters())


def log(line):
    sys.stderr.write(line + '\n')
    sys.stderr.flush()


def train_times(network, batch, height, width, classes, steps, dropclass, warmup=None):
    """Milliseconds of each of `steps` training steps on one random batch (classes dropped in turn);
    with `warmup` given, a progress line per step on stderr."""
    torch.manual_seed(0)
    optimizer = sgd(network.parameters(), 0.01, 0.9, 5e-4)
    x = torch.randn(batch, 3, height, width)
    y = torch.randint(0, classes, (batch, height, width))
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        train_step(network, optimizer, x, y, i % classes if dropclass else -1, 0.5, ALPHA)
        times.append(1000 * (time.perf_counter() - t0))
        if warmup is not None:
            log(f"  PyTorch step {i + 1}/{steps}{' (warm-up)' if i < warmup else ''}: {times[-1]:.0f} ms")
    return times


def run_unet(batch, size, base, depth, k, steps, dropclass, feature_channels=0):
    torch.manual_seed(0)
    network = SegmentationNetwork(UNet(base, depth, featureChannels=feature_channels or None), k, dropclass)
    ts = sorted(train_times(network, batch, size, size, k, steps + 2, dropclass)[2:])
    return dict(params=params(network), median_ms=ts[len(ts) // 2])


def window_starts(size, window, stride):
    """Window offsets along one side: every `stride`, the last one flush with the end (as inferLogits)."""
    if size <= window:
        return [0]
    starts = list(range(0, size - window, stride))
    return starts + [size - window]


def infer_logits(network, image, window=None, stride=None):
    """Logits of the whole image, or window by window averaged where windows overlap."""
    if window is None:
        return network(image), 1
    b, _, height, width = image.shape
    wh, ww = window
    sh, sw = stride or (math.ceil(wh / 2), math.ceil(ww / 2))
    padded = torch.nn.functional.pad(image, (0, max(0, ww - width), 0, max(0, wh - height)))
    total, count, windows = None, torch.zeros(height, width), 0
    for y0 in window_starts(padded.shape[2], wh, sh):
        for x0 in window_starts(padded.shape[3], ww, sw):
            logits = network(padded[:, :, y0:y0 + wh, x0:x0 + ww].contiguous())
            rows, cols = min(wh, height - y0), min(ww, width - x0)
            if total is None:
                total = torch.zeros(b, logits.shape[1], height, width)
            total[:, :, y0:y0 + rows, x0:x0 + cols] += logits[:, :, :rows, :cols]
            count[y0:y0 + rows, x0:x0 + cols] += 1
            windows += 1
    return total / count, windows


def point(spec):
    threads = spec.get('threads') or torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    backbone = spec['backbone']
    network = SegmentationNetwork(build_backbone(backbone['kind'], backbone.get('options')), spec['classes'], spec['dropclass'])
    about = dict(torch=torch.__version__, threads=torch.get_num_threads(), params=params(network))
    if spec['task'] == 'train':
        network.train()
        warmup = spec['warmup']
        times = train_times(network, spec['batch'], spec['height'], spec['width'], spec['classes'], warmup + spec['steps'], spec['dropclass'], warmup)
        return dict(about, medianMs=median(times[warmup:]), stepsMs=times[warmup:], warmupMs=times[:warmup], maxRssMiB=peak_rss_mib())
    if spec['task'] == 'infer':
        network.eval()
        images = []
        with torch.inference_mode():
            for entry in spec['images']:
                image = torch.randn(1, 3, entry['height'], entry['width'])
                window, stride = entry.get('window'), entry.get('stride')
                _, windows = infer_logits(network, image, window, stride)  # warm-up
                times = []
                for r in range(spec['repeats']):
                    t0 = time.perf_counter()
                    infer_logits(network, image, window, stride)
                    times.append(1000 * (time.perf_counter() - t0))
                    log(f"  PyTorch {entry['name']} ({windows} windows): {times[-1]:.0f} ms")
                images.append(dict(name=entry['name'], windows=windows, medianMs=median(times), timesMs=times))
        return dict(about, images=images, maxRssMiB=peak_rss_mib())
    raise SystemExit(f"task must be train or infer, not {spec['task']!r}")


if __name__ == '__main__':
    if len(sys.argv) > 2 and sys.argv[1] == '--spec':
        print(json.dumps(point(json.loads(sys.argv[2]))))
        sys.exit(0)
    torch.set_num_threads(2)
    a = [int(v) for v in sys.argv[1:]] + [4, 128, 16, 4, 8, 10, 0][len(sys.argv) - 1:]
    batch, size, base, depth, k, steps, f = a[:7]
    print(json.dumps(dict(config=dict(batch=batch, size=size, base=base, depth=depth, classes=k, feature_channels=f, threads=2),
                          baseline=run_unet(batch, size, base, depth, k, steps, False, f),
                          dropclass=run_unet(batch, size, base, depth, k, steps, True, f))))
