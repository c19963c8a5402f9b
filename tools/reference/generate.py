#!/usr/bin/env python3
"""Writes the dropclass-reference/1 vectors that @dropclass/core is checked against.

An independent float64 PyTorch implementation of DropClass's class importance, suppression,
feature selection and three-term objective (sections 1-3 of the method as the core package's
README states it), differentiated by autograd. Layout NHWC, the classifier kernel W as [C,K], the feature-selection
kernel Ws as [Cin,Cout]; every array is written flattened row-major.

Needs PyTorch: Debian's python3-torch (apt-get install python3-torch), run with /usr/bin/python3.

usage: /usr/bin/python3 tools/reference/generate.py [OUT_DIR]
       (default OUT_DIR: packages/dropclass-core/reference beside this script's repository)
"""
import json
import os
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("generate.py: PyTorch is not importable by %s; install Debian's python3-torch "
             "(apt-get install python3-torch) and run this script with /usr/bin/python3" % sys.executable)

FORMAT = "dropclass-reference/1"
LAYOUT = "NHWC; W is [C,K]; Ws is [Cin,Cout]; every array flattened row-major"
IGNORE = 255
ALPHA = 10.0
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


def masked_cross_entropy(logits_nchw, labels):
    """Mean softmax cross-entropy over pixels whose label is not IGNORE; 0 when there are none."""
    if logits_nchw.shape[2:] != labels.shape[1:]:
        logits_nchw = F.interpolate(logits_nchw, size=tuple(labels.shape[1:]), mode="bilinear", align_corners=False)
    log_p = F.log_softmax(logits_nchw, dim=1)
    valid = labels != IGNORE
    safe = torch.where(valid, labels, torch.zeros_like(labels))
    picked = log_p.gather(1, safe.unsqueeze(1)).squeeze(1)
    nll = -(picked * valid.to(DTYPE)).sum()
    return nll / valid.sum().clamp(min=1).to(DTYPE)


def objective(A, W, b, Ws, bs, gamma, beta, labels, dropped, t):
    K = W.shape[1]
    S = F.relu(W)  # [C,K], column c = importance of class c
    keep = torch.ones(K, dtype=DTYPE)
    if dropped >= 0:
        keep[dropped] = 0.0
    s = (S * keep).sum(1) / keep.sum()  # [C]
    conv = torch.einsum("bhwc,cd->bhwd", A * s, Ws) + bs
    mean = conv.mean(dim=(0, 1, 2))
    var = ((conv - mean) ** 2).mean(dim=(0, 1, 2))  # biased
    A_drop = F.relu(gamma * (conv - mean) / torch.sqrt(var + EPSILON) + beta)
    logits = torch.einsum("bhwc,ck->bhwk", A, W) + b
    logits_drop = torch.einsum("bhwc,ck->bhwk", A_drop, W) + b
    to_nchw = lambda x: x.permute(0, 3, 1, 2)
    loss_ce = masked_cross_entropy(to_nchw(logits), labels)
    drop_labels = labels.clone()
    if dropped >= 0:
        drop_labels[drop_labels == dropped] = IGNORE
    loss_drop = masked_cross_entropy(to_nchw(logits_drop), drop_labels)
    if dropped >= 0:
        loss_sup = F.softmax(logits_drop, dim=3)[..., dropped].mean()  # at the logits' own size
    else:
        loss_sup = torch.zeros((), dtype=DTYPE)
    total = (1 - t) * loss_ce + t * loss_drop + ALPHA * loss_sup
    return dict(logits=logits, logitsDrop=logits_drop, importance=s, lossCe=loss_ce, lossDrop=loss_drop, lossSup=loss_sup, total=total)


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
        keep = torch.ones(K, dtype=DTYPE)
        if dropped >= 0:
            keep[dropped] = 0.0
        s = (F.relu(inputs["W"]) * keep).sum(1) / keep.sum()
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
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = argv[0] if argv else os.path.join(here, "..", "..", "packages", "dropclass-core", "reference")
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
