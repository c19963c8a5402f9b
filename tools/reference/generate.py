#!/usr/bin/env python3
"""Writes the dropclass-reference/1 vectors that @dropclass/core is checked against.

A float64 PyTorch implementation of DropClass's class importance, suppression, feature selection
and three-term objective (sections 1-3 of the method as the core package's README states it),
independent of the TypeScript code: the objective of the project's PyTorch twins,
packages/experiments/python/dropclass_twin/objective.py, differentiated by autograd. Layout NHWC, the classifier kernel W as [C,K], the feature-selection
kernel Ws as [Cin,Cout]; every array is written flattened row-major.

Needs PyTorch: Debian's python3-torch (apt-get install python3-torch), run with /usr/bin/python3.

usage: /usr/bin/python3 tools/reference/generate.py [OUT_DIR]
       (default OUT_DIR: packages/dropclass-core/reference beside this script's repository)
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# The project's PyTorch twins (networks, DropClass objective, recipe), written once.
sys.path.insert(0, os.path.join(HERE, "..", "..", "packages", "experiments", "python"))

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("generate.py: PyTorch is not importable by %s; install Debian's python3-torch "
             "(apt-get install python3-torch) and run this script with /usr/bin/python3" % sys.executable)

from dropclass_twin.objective import ALPHA, IGNORE, importance, objective as dropclass_objective

FORMAT = "dropclass-reference/1"
LAYOUT = "NHWC; W is [C,K]; Ws is [Cin,Cout]; every array flattened row-major"
EPSILON = 1e-5
DTYPE = torch.float64

# name, seed, A [B,H,W,C], labels [H',W'], classes K, dropped class (-1: none), progress t,
# fraction of pixels labelled IGNORE, what the case is for
CASES = [
    ("dropclass-drop", 11, (2, 4, 5, 6), (4, 5), 4, 2, 0.6, 0.15, "one class dropped, logits at the labels' size"),
    ("dropclass-nodrop", 12, (2, 3, 4, 5), (3, 4), 3, -1, 0.3, 0.15, "nothing dropped (no suppression term)"),
    ("dropclass-coarse", 13, (2, 3, 4, 6), (7, 9), 5, 1, 0.45, 0.1,
     "logits coarser than the labels (3x4 -> 7x9, bilinear, half-pixel centres) with a class dropped"),
    ("dropclass-all-ignored", 14, (1, 3, 3, 4), (3, 3), 3, 0, 0.5, 1.0,
     "every pixel ignored: both cross-entropy terms are 0, only the suppression term remains"),
    ("dropclass-end", 15, (2, 2, 3, 5), (2, 3), 4, 3, 1.0, 0.0, "end of training (t = 1): only the dropped path is trained"),
]


def objective(A, W, b, Ws, bs, gamma, beta, labels, dropped, t):
    """The package's objective on the NHWC inputs: the classifier and the feature-selection conv as
    1x1 convolutions of W [C,K] and Ws [Cin,Cout], the batch norm on the batch's statistics (biased
    variance); logits back to NHWC."""
    pointwise = lambda kernel, bias: (lambda x: F.conv2d(x, kernel.t()[:, :, None, None], bias))
    select = lambda x: F.relu(F.batch_norm(pointwise(Ws, bs)(x), None, None, gamma, beta, training=True, eps=EPSILON))
    out = dropclass_objective(A.permute(0, 3, 1, 2), W.t(), pointwise(W, b), select, labels, dropped, t, ALPHA)
    to_nhwc = lambda x: x.permute(0, 2, 3, 1)
    return {**out, "logits": to_nhwc(out["logits"]), "logitsDrop": to_nhwc(out["logitsDrop"])}


def flat(x):
    return [float(v) for v in x.detach().reshape(-1).tolist()]


def case(name, seed, a_shape, label_size, K, dropped, t, ignored, about):
    g = torch.Generator().manual_seed(seed)
    B, H, W_, C = a_shape
    inputs = {
        "A": F.relu(torch.randn(a_shape, generator=g, dtype=DTYPE)),
        "W": 0.3 * torch.randn((C, K), generator=g, dtype=DTYPE),
        "b": 0.1 * torch.randn((K,), generator=g, dtype=DTYPE),
        "Ws": torch.randn((C, C), generator=g, dtype=DTYPE),
        "bs": 0.1 * torch.randn((C,), generator=g, dtype=DTYPE),
        "gamma": 1 + 0.1 * torch.randn((C,), generator=g, dtype=DTYPE),
        "beta": 0.1 * torch.randn((C,), generator=g, dtype=DTYPE),
    }
    # The bias gradient of the feature-selection conv is zero in exact arithmetic (batch norm
    # follows it) and comes out of float32 as a difference of terms scaled by 1/std of the batch
    # norm's input. Ws is scaled so that this input has a standard deviation near 1, as in a
    # network whose features are normalised; with std near 0.02 the float32 rounding of that
    # zero alone exceeds the 1e-5 absolute tolerance on some backends.
    with torch.no_grad():
        s = importance(inputs["W"].t(), dropped)
        inputs["Ws"] /= torch.einsum("bhwc,cd->bhwd", inputs["A"] * s, inputs["Ws"]).std()
    labels = torch.randint(0, K, (B,) + tuple(label_size), generator=g)
    labels[torch.rand(labels.shape, generator=g) < ignored] = IGNORE
    if dropped >= 0 and ignored < 1:
        labels.view(-1)[0] = dropped  # the dropped class is present in the batch
    for tensor in inputs.values():
        tensor.requires_grad_(True)
    out = objective(*inputs.values(), labels, dropped, t)
    grads = torch.autograd.grad(out["total"], list(inputs.values()))
    shapes = {k: list(v.shape) for k, v in inputs.items()}
    shapes["labels"] = list(labels.shape)
    for k in ("logits", "logitsDrop", "importance"):
        shapes[k] = list(out[k].shape)
    return {
        "format": FORMAT,
        "layout": LAYOUT,
        "about": about,
        "shapes": shapes,
        "config": {"numClasses": K, "droppedClass": dropped, "progress": t, "alpha": ALPHA, "bnEpsilon": EPSILON, "ignoreIndex": IGNORE},
        "inputs": {**{k: flat(v) for k, v in inputs.items()}, "labels": [int(v) for v in labels.reshape(-1).tolist()]},
        "outputs": {k: (float(v) if v.dim() == 0 else flat(v)) for k, v in out.items()},
        "gradients": {k: flat(gr) for k, gr in zip(inputs, grads)},
    }


def main(argv):
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip())
        return 0
    out_dir = argv[0] if argv else os.path.join(HERE, "..", "..", "packages", "dropclass-core", "reference")
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    for spec in CASES:
        data = case(*spec)
        path = os.path.join(out_dir, spec[0] + ".json")
        with open(path, "w") as f:
            json.dump(data, f)
            f.write("\n")
        print("wrote %s (total %.6f)" % (os.path.normpath(path), data["outputs"]["total"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
