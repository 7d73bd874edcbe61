"""Draw a few validation examples (image + question, prediction, answers; boxes with their labels
for heads that predict regions) for TensorBoard."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

# a box to draw: (x1, y1, x2, y2) as fractions of the image's width and height, its label, its colour
PanelBox = tuple[tuple[float, float, float, float], str, str]


def example_panel(
    image_path: str, text: str, size: int = 192, text_height: int = 64, boxes: Sequence[PanelBox] = ()
) -> torch.Tensor:
    """A CHW uint8 tensor: the image scaled to `size` with `boxes` drawn on it (each labelled at its
    top-left corner) and the text written under it."""
    with Image.open(image_path) as im:
        image = im.convert("RGB").resize((size, size))
    canvas = Image.new("RGB", (size, size + text_height), "white")
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for box, label, colour in boxes:
        x1, x2 = sorted(min(max(v, 0.0), 1.0) * (size - 1) for v in (box[0], box[2]))
        y1, y2 = sorted(min(max(v, 0.0), 1.0) * (size - 1) for v in (box[1], box[3]))
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=2)
        if label:
            draw.text((x1 + 2, y1 + 1), label, fill=colour)
    draw.multiline_text((3, size + 2), text, fill="black", spacing=2)
    return torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1)
