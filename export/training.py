"""Minimal, deterministic training of a classifier on a :class:`calibration.datasets.Dataset`."""
import numpy as np
import torch
from torch import nn


class TrainConfig(object):
    """Epochs, batch size, learning rate (Adam), weight decay, seed, and light augmentation."""

    def __init__(self, epochs=15, batch_size=64, lr=3e-3, weight_decay=1e-4, seed=0,
                 augment_shift_px=0):
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed
        self.augment_shift_px = augment_shift_px


def train_classifier(model, data, config=None, progress=None, targets=None):
    """Train ``model`` with cross-entropy on ``data`` (images, labels); returns the model in eval mode.

    ``targets`` optionally replaces ``data.labels``; ``progress`` is called as ``progress(epoch, loss)``.
    """
    config = config or TrainConfig()
    torch.manual_seed(config.seed)
    rng = np.random.RandomState(config.seed)
    images = torch.from_numpy(data.images)
    labels = torch.from_numpy(np.asarray(data.labels if targets is None else targets))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, config.epochs))
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(config.epochs):
        order = torch.from_numpy(rng.permutation(len(images)))
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            index = order[start:start + config.batch_size]
            batch = images[index]
            if config.augment_shift_px:
                dy, dx = rng.randint(-config.augment_shift_px, config.augment_shift_px + 1, size=2)
                batch = torch.roll(batch, shifts=(int(dy), int(dx)), dims=(2, 3))
            optimizer.zero_grad()
            loss = loss_fn(model(batch), labels[index])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(index)
        scheduler.step()
        if progress is not None:
            progress(epoch, total / len(images))
    return model.eval()


@torch.no_grad()
def predict_logits(model, images, batch_size=256):
    """Logits of ``model`` (eval mode) for a float32 NCHW numpy array."""
    model.eval()
    parts = [model(torch.from_numpy(images[i:i + batch_size])).numpy()
             for i in range(0, len(images), batch_size)]
    return np.concatenate(parts)


def accuracy(logits, labels):
    """Share of rows whose arg-max equals the label."""
    return float(np.mean(np.argmax(logits, axis=1) == labels))
