"""Draw a few validation examples (image + question, prediction, answers) for TensorBoard."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw


def example_panel(image_path: str, text: str, size: int = 192, text_height: int = 64) -> torch.Tensor:
    """A CHW uint8 tensor: the image scaled to `size` with the text written under it."""
    with Image.open(image_path) as im:
        image = im.convert("RGB").resize((size, size))
    canvas = Image.new("RGB", (size, size + text_height), "white")
    canvas.paste(image, (0, 0))
    ImageDraw.Draw(canvas).multiline_text((3, size + 2), text, fill="black", spacing=2)
    return torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1)
