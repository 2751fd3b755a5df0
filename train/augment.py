"""Batch augmentation on whatever device the faces live on: one affine warp, photometric jitter, erasing."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment(faces: torch.Tensor, max_rotation: float = 15.0, max_scale: float = 0.15, max_shift: float = 0.1,
            brightness: float = 0.25, contrast: float = 0.25, erase_prob: float = 0.5,
            max_aspect: float = 0.0) -> torch.Tensor:
    """Random flip, rotation, scale (and aspect, up to ±`max_aspect` in log), shift, brightness/contrast and
    erasing of uint8 faces (N, H, W).

    Returns float faces (N, H, W) on the 0..255 scale, ready for `fer_model.preprocess.normalize`.
    """
    n, h, w = faces.shape
    x = faces.float().unsqueeze(1)
    rand = lambda *shape: torch.rand(*shape, device=x.device)  # noqa: E731
    angle = (rand(n) * 2 - 1) * math.radians(max_rotation)
    scale = 1 + (rand(n) * 2 - 1) * max_scale
    flip = torch.where(rand(n) < 0.5, -1.0, 1.0)
    aspect = torch.exp((rand(n) * 2 - 1) * max_aspect)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip * aspect, -sin * aspect, (rand(n) * 2 - 1) * max_shift * 2], 1),
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


def capture(faces: torch.Tensor, p: float) -> torch.Tensor:
    """What real cameras and pipelines do to a face, each with probability `p`, on float faces (N, H, W) on the
    0..255 scale: gamma (exposure), loss of resolution, Gaussian blur, sensor noise and JPEG compression."""
    n, h, w = faces.shape
    x = faces.unsqueeze(1)
    chosen = lambda: (torch.rand(n, 1, 1, 1, device=x.device) < p)  # noqa: E731
    gamma = torch.exp((torch.rand(n, 1, 1, 1, device=x.device) * 2 - 1) * 0.5)
    x = torch.where(chosen(), 255 * (x / 255).clamp(min=0) ** gamma, x)
    side = int(torch.randint(max(12, h // 4), h, ()).item())
    low = F.interpolate(F.interpolate(x, size=(side, side), mode="area"), size=(h, w), mode="bilinear",
                        align_corners=False)
    x = torch.where(chosen(), low, x)
    x = torch.where(chosen(), gaussian_blur(x, torch.rand(n, device=x.device) * 1.2 + 0.3), x)
    x = torch.where(chosen(), x + torch.randn_like(x) * torch.rand(n, 1, 1, 1, device=x.device) * 10, x)
    x = x.clamp(0, 255).squeeze(1)
    compressed = torch.nonzero(torch.rand(n) < p).flatten()
    if len(compressed):
        x = x.clone()
        x[compressed.to(x.device)] = jpeg(x[compressed.to(x.device)])
    return x


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """Each image of (N, 1, H, W) blurred with its own Gaussian `sigma` (N,), separably."""
    n = x.shape[0]
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-offsets.view(1, -1) ** 2 / (2 * sigma.view(-1, 1) ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).view(n, 1, 1, -1)
    y = F.pad(x.transpose(0, 1), (radius, radius, radius, radius), mode="replicate")
    y = F.conv2d(y, kernel, groups=n)
    y = F.conv2d(y, kernel.transpose(2, 3), groups=n)
    return y.transpose(0, 1)


def jpeg(faces: torch.Tensor) -> torch.Tensor:
    """Float faces (N, H, W) through JPEG at a random quality of 15-70 each (OpenCV, on the CPU)."""
    import cv2
    import numpy as np

    out = []
    for face in faces.detach().to("cpu", torch.float32).round().clamp(0, 255).to(torch.uint8).numpy():
        quality = int(np.random.randint(15, 71))
        _, data = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append(cv2.imdecode(data, cv2.IMREAD_GRAYSCALE))
    return torch.from_numpy(np.stack(out)).to(faces.device, faces.dtype)
