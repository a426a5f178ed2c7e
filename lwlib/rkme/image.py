"""A kernel that suits images: a fixed random convolutional feature map in front of the Gaussian kernel.

Why: pixels compared as a table make every image a point in a 784-d box where a one-pixel shift is as far as a
different object; the reference instead builds and compares image RKMEs under a convolutional NNGP kernel (the
infinite-width limit of a random ConvNet, LEARNWARE_FORMAT.md §3.2), which is expensive (a 3-layer conv kernel per
pair of images). A cheap alternative with the same flavour is a *finite* random ConvNet: one layer of fixed,
seeded random 5×5 filters, ReLU, and average pooling, giving local, shift-tolerant features whose Gaussian kernel
behaves like a shallow conv kernel. The map is deterministic (seeded), data-free and identical on every machine,
so the dock can apply it to any pixel RKME it holds (the reduced points are images too) and to the user's rows —
no submitter action, no training data. ``benchmarks/kernel_study.py`` measures it against pixels-as-a-table.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from lwlib.base import LwEstimator
from lwlib.errors import LwdockError

logger = logging.getLogger(__name__)

__all__ = ["ConvFeatureMap"]


class ConvFeatureMap(LwEstimator):
    """Fixed random conv features: ``avgpool(relu(conv(x, W) + b))``, flattened and scaled by 1/√n_features.

    Parameters
    ----------
    image_shape : (height, width)
        Rows are flattened single-channel images of this shape.
    n_filters : int, default 32
    kernel_size : int, default 5
    pool : int, default 4
        Average-pooling window (and stride).
    random_state : int, default 0

    Examples
    --------
    >>> fmap = ConvFeatureMap(image_shape=(8, 8), n_filters=4, kernel_size=3, pool=2)
    >>> fmap.transform(np.zeros((2, 64))).shape
    (2, 64)
    """

    def __init__(self, image_shape: tuple[int, int] = (28, 28), n_filters: int = 32, kernel_size: int = 5,
                 pool: int = 4, random_state: int = 0) -> None:
        self.image_shape = image_shape
        self.n_filters = n_filters
        self.kernel_size = kernel_size
        self.pool = pool
        self.random_state = random_state

    def _weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.RandomState(self.random_state)  # numpy's legacy RNG: identical streams on every platform
        k = int(self.kernel_size)
        W = rng.normal(0.0, np.sqrt(2.0 / (k * k)), (int(self.n_filters), 1, k, k))
        b = rng.normal(0.0, 0.1, int(self.n_filters))
        return torch.from_numpy(W), torch.from_numpy(b)

    def transform(self, X: Any) -> NDArray[np.float64]:
        """Map rows of flattened images (n, h·w) to features (n, n_filters · h' · w'), per-image standardised."""
        h, w = (int(v) for v in self.image_shape)
        A = np.asarray(X, dtype=np.float64)
        if A.ndim != 2 or A.shape[1] != h * w:
            raise LwdockError(f"ConvFeatureMap expects rows of {h}x{w}={h * w} pixels, got shape {A.shape}.",
                              code="invalid_input")
        A = (A - A.mean(axis=1, keepdims=True)) / np.maximum(A.std(axis=1, keepdims=True), 1e-8)
        W, b = self._weights()
        out = []
        with torch.no_grad():
            for s in range(0, A.shape[0], 2048):  # bounded memory
                x = torch.from_numpy(np.ascontiguousarray(A[s:s + 2048])).reshape(-1, 1, h, w)
                y = torch.relu(torch.nn.functional.conv2d(x, W, b, padding=int(self.kernel_size) // 2))
                y = torch.nn.functional.avg_pool2d(y, int(self.pool))
                out.append(y.reshape(y.shape[0], -1))
        F = torch.cat(out).numpy()
        features: NDArray[np.float64] = F / np.sqrt(F.shape[1])
        return features
