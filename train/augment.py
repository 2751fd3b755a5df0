"""Batch augmentation on whatever device the faces live on: one affine warp, photometric jitter, erasing."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment(faces: torch.Tensor, max_rotation: float = 15.0, max_scale: float = 0.15, max_shift: float = 0.1,
            brightness: float = 0.25, contrast: float = 0.25, erase_prob: float = 0.5) -> torch.Tensor:
    """Random flip, rotation, scale, shift, brightness/contrast and erasing of uint8 faces (N, H, W).

    Returns float faces (N, H, W) on the 0..255 scale, ready for `fer_model.preprocess.normalize`.
    """
    n, h, w = faces.shape
    x = faces.float().unsqueeze(1)
    rand = lambda *shape: torch.rand(*shape, device=x.device)  # noqa: E731
    angle = (rand(n) * 2 - 1) * math.radians(max_rotation)
    scale = 1 + (rand(n) * 2 - 1) * max_scale
    flip = torch.where(rand(n) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, (rand(n) * 2 - 1) * max_shift * 2], 1),
                         torch.stack([sin * flip, cos, (rand(n) * 2 - 1) * max_shift * 2], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    mean = x.mean(dim=(2, 3), keepdim=True)
    gain = 1 + (rand(n, 1, 1, 1) * 2 - 1) * contrast
    offset = (rand(n, 1, 1, 1) * 2 - 1) * brightness * 255
    x = ((x - mean) * gain + mean + offset).clamp(0, 255)

    area = rand(n) * 0.18 + 0.02
    aspect = torch.exp((rand(n) * 2 - 1) * math.log(3))
    eh, ew = (torch.sqrt(area * aspect) * h).clamp(max=h), (torch.sqrt(area / aspect) * w).clamp(max=w)
    top, left = rand(n) * (h - eh), rand(n) * (w - ew)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    box = ((ys >= top.view(n, 1, 1)) & (ys < (top + eh).view(n, 1, 1))
           & (xs >= left.view(n, 1, 1)) & (xs < (left + ew).view(n, 1, 1)))
    erase = box & (rand(n) < erase_prob).view(n, 1, 1)
    x = torch.where(erase.unsqueeze(1), rand(n, 1, h, w) * 255, x)
    return x.squeeze(1)


def random_crop(faces: torch.Tensor, size: int) -> torch.Tensor:
    """A random `size` x `size` crop of each face in (N, H, W), on the faces' device."""
    n, h, w = faces.shape
    if (h, w) == (size, size):
        return faces
    top = torch.randint(0, h - size + 1, (n, 1, 1), device=faces.device)
    left = torch.randint(0, w - size + 1, (n, 1, 1), device=faces.device)
    offsets = torch.arange(size, device=faces.device)
    rows, cols = (top + offsets.view(1, size, 1)), (left + offsets.view(1, 1, size))
    return faces[torch.arange(n, device=faces.device).view(n, 1, 1), rows, cols]
