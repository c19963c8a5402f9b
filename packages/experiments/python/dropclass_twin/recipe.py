"""The training recipe: SGD with momentum and weight decay (torch.optim.SGD, as the tfjs optimizer
applies them), the poly learning-rate schedule, and one training step."""
import torch


def sgd(parameters, learning_rate, momentum=0.9, weight_decay=5e-4):
    return torch.optim.SGD(parameters, lr=learning_rate, momentum=momentum, weight_decay=weight_decay)


def poly_lr(base, step, iterations, power):
    """base * (1 - step / iterations) ** power, 0 past the end."""
    return base * max(0.0, 1 - step / iterations) ** power


def set_lr(optimizer, lr):
    for group in optimizer.param_groups:
        group['lr'] = lr


def train_step(network, optimizer, x, y, dropped, t, alpha):
    """Forward, the objective, backward and the SGD step of a `SegmentationNetwork`; the loss terms."""
    optimizer.zero_grad()
    terms = network.losses(x, y, dropped, t, alpha)
    terms['total'].backward()
    optimizer.step()
    return terms
