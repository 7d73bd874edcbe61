"""RetrievalCache: what the two-stage (ITC -> ITM) retrieval evaluation keeps per image and caption.

Per image: id, ITC embedding, vision tokens; per caption: id, image id, ITC embedding, token ids.
The head gathers the states once at the epoch's end (`collect` inside `sync_context`), re-ranks with
`vltasks.metrics.functional.rerank_recalls` and stores the result, which `compute` returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from vltasks.metrics.base import SampleMetric
from vltasks.metrics.utilities import ids_to_tensor, keep_indices


def _rows(flat: Tensor, n: int) -> Tensor:
    """[n, width] from a flat state; [0, 0] when there are no rows (the width is then unknown)."""
    return flat.reshape(n, -1) if n else flat.reshape(0, 0)


class RetrievalCache(SampleMetric):
    """Per-image and per-caption evaluation states; `compute` returns what `rerank_recalls` set.

    Not synced on compute: the head gathers the states once, in `on_eval_epoch_end`, to re-rank.
    """

    def __init__(self, cache_dtype: torch.dtype = torch.float32, **kwargs: Any) -> None:
        super().__init__(sync_on_compute=False, **kwargs)
        self._add_sample_state("image_embeds", torch.float32)
        self._add_sample_state("image_tokens", cache_dtype)
        for name in ("text_ids", "text_image_ids", "text_token_ids", "text_lengths"):
            self._add_sample_state(name, torch.long)
        self._add_sample_state("text_embeds", torch.float32)
        self._add_sample_state("token_shape", torch.long)  # [P, Dv] once per update
        self.result: dict[str, Tensor] | None = None

    def update(
        self,
        image_ids: Sequence[int] | Tensor,
        image_embeds: Tensor,
        image_tokens: Tensor,
        text_ids: Sequence[int] | Tensor,
        text_image_ids: Sequence[int] | Tensor,
        text_embeds: Tensor,
        input_ids: Tensor,
        attention_mask: Tensor,
    ) -> None:
        self._append(image_ids, image_embeds=image_embeds.float(), image_tokens=image_tokens)
        self._push("token_shape", torch.tensor(image_tokens.shape[1:]))
        real = attention_mask.bool()
        self._push("text_ids", ids_to_tensor(text_ids, device=self.device))
        self._push("text_image_ids", ids_to_tensor(text_image_ids, device=self.device))
        self._push("text_embeds", text_embeds.float())
        self._push("text_token_ids", input_ids[real])  # row-major: each caption's real tokens in order
        self._push("text_lengths", real.sum(1))

    def compute(self) -> dict[str, Tensor]:
        if self.result is None:
            raise RuntimeError("RetrievalCache: the head's on_eval_epoch_end must re-rank before compute()")
        return self.result

    def reset(self) -> None:
        super().reset()
        self.result = None

    def collect(self) -> dict[str, Any]:
        """De-duplicated states sorted by id (call inside `sync_context` to see every process).

        Nothing cached anywhere (e.g. an unlabelled split) gives empty items, which the caller skips.
        """
        ids = self._flat("ids")
        keep = keep_indices(ids)
        img_ids, order = torch.sort(ids[keep])
        n = ids.numel()
        emb = _rows(self._flat("image_embeds"), n)[keep][order]
        shape = self._flat("token_shape").reshape(-1, 2)[:1].flatten().tolist() if n else [0, 0]
        tok = self._flat("image_tokens").reshape(n, *shape)[keep][order]
        tids = self._flat("text_ids")
        lengths = self._flat("text_lengths")
        starts = torch.cumsum(lengths, 0) - lengths
        tkeep = keep_indices(tids)
        text_ids, torder = torch.sort(tids[tkeep])
        sel = tkeep[torder]
        tembs = _rows(self._flat("text_embeds"), tids.numel())[sel]
        timg = self._flat("text_image_ids")[sel]
        pos = torch.searchsorted(img_ids, timg).clamp(max=max(img_ids.numel() - 1, 0))
        if timg.numel() and (img_ids.numel() == 0 or not bool((img_ids[pos] == timg).all())):
            raise ValueError("retrieval: some captions name image ids that were never evaluated")
        return {
            "image_ids": img_ids,
            "image_embeds": emb,
            "image_tokens": tok,
            "text_ids": text_ids,
            "text_embeds": tembs,
            "text_to_image": pos,
            "token_ids": self._flat("text_token_ids"),
            "starts": starts[sel],
            "lengths": lengths[sel],
        }
