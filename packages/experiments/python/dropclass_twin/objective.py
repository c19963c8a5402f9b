"""The DropClass head and objective, written from the method's definition (NCHW):

- class importance: s = relu(W) averaged over the kept classes (every class when none is dropped),
  W the classifier's kernel [K, C];
- feature selection: A_drop = relu(BN(conv1x1(A * s)));
- objective: (1 - t) CE(logits, y) + t CE(logits_drop, y with the dropped class ignored)
  + alpha mean p_drop(z), the last at the logits' own size; cross-entropies on logits brought to the
  labels' size (bilinear, half-pixel centres), over the pixels not labelled IGNORE (0 when none).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-5
BN_MOMENTUM = 0.1  # weight of the new batch in the moving statistics (PyTorch's default)


def batch_norm(channels):
    """The batch norm of every twin (the networks' and the feature-selection layer's): torch only,
    so that the objective needs no torchvision."""
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


IGNORE = 255
ALPHA = 10.0
NO_CLASS = -1


def masked_cross_entropy(logits, labels):
    """Mean softmax cross-entropy over the pixels whose label is not IGNORE; 0 when there are none."""
    if logits.shape[2:] != labels.shape[1:]:
        logits = F.interpolate(logits, size=tuple(labels.shape[1:]), mode='bilinear', align_corners=False)
    total = F.cross_entropy(logits, labels, ignore_index=IGNORE, reduction='sum')
    return total / (labels != IGNORE).sum().clamp(min=1).to(total.dtype)


def importance(weight, dropped=NO_CLASS):
    """relu(W) averaged over the kept classes: [C] from the classifier's kernel `weight` [K, C]."""
    keep = torch.ones(weight.shape[0], dtype=weight.dtype, device=weight.device)
    if dropped is not None and dropped >= 0:
        keep[dropped] = 0
    return (F.relu(weight) * keep[:, None]).sum(0) / keep.sum()


def objective(A, weight, classify, select, labels, dropped, t, alpha=ALPHA):
    """The three-term objective on features A [B,C,H,W]; `classify` maps features to logits (its kernel
    is `weight` [K,C]), `select` is the feature selection's relu(BN(conv1x1(.))). Returns the logits
    (NCHW), the importance and the loss terms."""
    s = importance(weight, dropped)
    logits = classify(A)
    logits_drop = classify(select(A * s[None, :, None, None]))
    drop_labels = labels
    if dropped >= 0:
        drop_labels = labels.clone()
        drop_labels[drop_labels == dropped] = IGNORE
    loss_ce = masked_cross_entropy(logits, labels)
    loss_drop = masked_cross_entropy(logits_drop, drop_labels)
    loss_sup = F.softmax(logits_drop, 1)[:, dropped].mean() if dropped >= 0 else loss_ce.new_zeros(())
    total = (1 - t) * loss_ce + t * loss_drop + alpha * loss_sup
    return dict(logits=logits, logitsDrop=logits_drop, importance=s, lossCe=loss_ce, lossDrop=loss_drop, lossSup=loss_sup, total=total)


class Head(nn.Module):
    """The DropClass head: classifier 1x1 conv C->K (W, b); with `dropclass` the feature-selection
    1x1 conv C->C + BN + ReLU. Without it, the baseline: the classifier and cross-entropy alone."""

    def __init__(self, channels, num_classes, dropclass=True):
        super().__init__()
        self.classifier = nn.Conv2d(channels, num_classes, 1)
        self.dropclass = dropclass
        if dropclass:
            self.selection = nn.Conv2d(channels, channels, 1)
            self.bn = batch_norm(channels)

    def select(self, x):
        return F.relu(self.bn(self.selection(x)))

    def losses(self, A, y, z=NO_CLASS, t=0.5, alpha=ALPHA):
        """The loss terms (lossCe, lossDrop, lossSup, total) of features A, labels y, dropped class z, progress t."""
        if not self.dropclass:
            ce = masked_cross_entropy(self.classifier(A), y)
            zero = ce.new_zeros(())
            return dict(lossCe=ce, lossDrop=zero, lossSup=zero, total=ce)
        out = objective(A, self.classifier.weight[:, :, 0, 0], self.classifier, self.select, y, z, t, alpha)
        return {k: out[k] for k in ('lossCe', 'lossDrop', 'lossSup', 'total')}

    def inference_logits(self, A):
        """Prediction: the classifier on the selected features, nothing dropped (the folded network's
        path); the classifier alone for a baseline."""
        if not self.dropclass:
            return self.classifier(A)
        return self.classifier(self.select(A * importance(self.classifier.weight[:, :, 0, 0])[None, :, None, None]))


class SegmentationNetwork(nn.Module):
    """A backbone and the head: `losses` for training, `forward` for the logits at the input's size."""

    def __init__(self, backbone, num_classes, dropclass):
        super().__init__()
        self.backbone = backbone
        self.head = Head(backbone.channels, num_classes, dropclass)

    def losses(self, x, y, z=NO_CLASS, t=0.5, alpha=ALPHA):
        return self.head.losses(self.backbone(x), y, z, t, alpha)

    def forward(self, x):
        logits = self.head.inference_logits(self.backbone(x))
        if logits.shape[2:] != x.shape[2:]:
            logits = F.interpolate(logits, size=tuple(x.shape[2:]), mode='bilinear', align_corners=False)
        return logits
