"""A dataset as tensors: uint8 images, int64 labels, the stratified splits and batched augmentation.

No per-sample PIL work happens in the training path: a dataset is six tensors (images N×C×H×W uint8,
labels int64) that the trainer moves to its device once and slices.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SPLIT_SEED = 1234  # fixed, so every run of a dataset sees the same validation and test images


def stratified_split(labels: np.ndarray, fraction: float, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out) with ``fraction`` of every class held out."""
    rng = np.random.default_rng(seed)
    kept, held = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_held = int(round(len(idx) * fraction))
        held.append(idx[:n_held])
        kept.append(idx[n_held:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


def as_images(array: np.ndarray) -> torch.Tensor:
    """Images as the model takes them: a uint8 (N, C, H, W) tensor from (N, H, W) or (N, H, W, C) arrays."""
    tensor = torch.from_numpy(np.array(array, dtype=np.uint8))  # a writable copy
    if tensor.ndim == 3:  # (N, H, W) grey
        tensor = tensor.unsqueeze(1)
    elif tensor.ndim == 4 and tensor.shape[-1] in (1, 3) and tensor.shape[1] not in (1, 3):
        tensor = tensor.permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)
    return tensor


def as_labels(array: np.ndarray) -> torch.Tensor:
    """Labels as the loss takes them: an int64 (N,) tensor."""
    return torch.from_numpy(np.array(array, dtype=np.int64))


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float in [0, 1], the model's input scale."""
    return images.float().div_(255.0)


def augment(
    images: torch.Tensor,
    generator: torch.Generator,
    max_rotate: float = 10.0,
    max_shift: float = 0.1,
    max_scale: float = 0.1,
) -> torch.Tensor:
    """Random small rotations, shifts and scaling of a whole float batch at once (one affine grid).

    The draws (angle, scale, x shift, y shift per image) come from ``generator`` in one call and reach the
    images' device in one copy: on a GPU, each host-to-device copy per step is a small stall."""
    n = images.shape[0]
    draws = torch.rand(4, n, generator=generator, device=generator.device) * 2 - 1
    draws *= torch.tensor([max_rotate, max_scale, max_shift, max_shift], device=draws.device)[:, None]
    angle, scale, shift_x, shift_y = draws.to(images.device)
    angle, scale, shift_x, shift_y = angle * (torch.pi / 180), 1 + scale, shift_x * 2, shift_y * 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
