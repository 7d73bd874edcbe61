"""Pretraining objectives from the seed (section 1), as plain functions over tensors (torch only).

Heads import these; every loss says which seed formula it implements and how it reduces.
"""

from vltasks.objectives.contrastive import LearnableTemperature, gather_with_grad, itc_loss
from vltasks.objectives.masked_language import IGNORE_INDEX, mask_tokens, mlm_loss
from vltasks.objectives.masked_region import (
    apply_region_mask,
    mask_patches,
    mask_regions,
    mrc_ce_loss,
    mrc_kl_loss,
    mrfr_loss,
)
from vltasks.objectives.matching import itm_loss, sample_itm_hard_negatives
from vltasks.objectives.prefix_lm import prefix_lm_loss
from vltasks.objectives.set_matching import hungarian_match, match_sets

__all__ = [
    "IGNORE_INDEX",
    "LearnableTemperature",
    "apply_region_mask",
    "gather_with_grad",
    "hungarian_match",
    "itc_loss",
    "itm_loss",
    "mask_patches",
    "mask_regions",
    "mask_tokens",
    "match_sets",
    "mlm_loss",
    "mrc_ce_loss",
    "mrc_kl_loss",
    "mrfr_loss",
    "prefix_lm_loss",
    "sample_itm_hard_negatives",
]
