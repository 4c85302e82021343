"""Pictures of depth crops with 2D skeletons (PIL), shared by `generate --sheet` and the app."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from crossingnets.hand.conventions import FINGER_COLORS, Convention


def depth_to_gray(crop: np.ndarray) -> np.ndarray:
    """(S, S) normalised crop in [-1, 1] -> (S, S) uint8, near bright, background black."""
    crop = np.asarray(crop, dtype=np.float32)
    hand = crop < 1.0
    img = np.zeros(crop.shape, np.uint8)
    if hand.any():
        lo, hi = float(crop[hand].min()), float(crop[hand].max())
        img[hand] = (255 - 205 * (crop[hand] - lo) / max(hi - lo, 1e-6)).astype(np.uint8)
    return img


def draw_skeleton(
    crop: np.ndarray, joints_crop_uv: np.ndarray, convention: Convention, scale: int = 2
) -> Image.Image:
    """A crop as an RGB image, `scale` times larger, with bones coloured per finger.

    `joints_crop_uv` is (J, 2) (or (J, 3); depth ignored) in crop pixels.
    """
    gray = depth_to_gray(crop)
    img = Image.fromarray(gray).convert("RGB").resize((gray.shape[1] * scale,) * 2, Image.NEAREST)
    draw = ImageDraw.Draw(img)
    uv = (np.asarray(joints_crop_uv, dtype=np.float64)[:, :2] + 0.5) * scale
    for (a, b), finger in zip(convention.bones, convention.bone_fingers(), strict=True):
        draw.line([tuple(uv[a]), tuple(uv[b])], fill=FINGER_COLORS[finger], width=max(1, scale))
    r = 1.5 * scale
    for (u, v), finger in zip(uv, convention.fingers, strict=True):
        draw.ellipse([u - r, v - r, u + r, v + r], fill=FINGER_COLORS[finger])
    return img


def contact_sheet(images: list[Image.Image], columns: int = 8) -> Image.Image:
    """Tile equally sized images into one sheet, row by row."""
    if not images:
        raise ValueError("contact sheet needs at least one image")
    w, h = images[0].size
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (w * min(columns, len(images)), h * rows), "white")
    for i, im in enumerate(images):
        sheet.paste(im, ((i % columns) * w, (i // columns) * h))
    return sheet


def font(size: int) -> ImageFont.ImageFont:
    """PIL's default font at `size` px (Pillow < 10.1 has one bitmap size)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()
