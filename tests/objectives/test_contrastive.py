"""ITC against a naive loop over the seed's InfoNCE formula, and 2-rank DDP against 1 process."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from tests.ddp import run_distributed
from vltasks.objectives import LearnableTemperature, itc_loss


def _unit(rows: list[list[float]]) -> list[list[float]]:
    return [[x / math.sqrt(sum(y * y for y in r)) for x in r] for r in rows]


def naive_itc(image: torch.Tensor, text: torch.Tensor, tau: float) -> float:
    """L_ITC = 1/2 (L_i->t + L_t->i), each -1/N sum_i log(exp(s_ii/tau) / sum_j exp(s_ij/tau))."""
    n = image.shape[0]
    v, t = _unit(image.tolist()), _unit(text.tolist())

    def sim(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b)) / tau

    def direction(a: list[list[float]], b: list[list[float]]) -> float:
        total = 0.0
        for i in range(n):
            denom = sum(math.exp(sim(a[i], b[j])) for j in range(n))
            total += math.log(math.exp(sim(a[i], b[i])) / denom)
        return -total / n

    return 0.5 * (direction(v, t) + direction(t, v))


def test_matches_naive_formula() -> None:
    g = torch.Generator().manual_seed(0)
    image = torch.randn(5, 8, generator=g, dtype=torch.float64)
    text = torch.randn(5, 8, generator=g, dtype=torch.float64)
    expected = naive_itc(image, text, tau=0.07)
    assert itc_loss(image, text, temperature=0.07).item() == pytest.approx(expected, rel=1e-10)
    assert itc_loss(image, text, 1 / 0.07).item() == pytest.approx(expected, rel=1e-10)
    assert itc_loss(image, text).item() == pytest.approx(expected, rel=1e-10)  # default tau 0.07
    # normalize=False is the same when the inputs are already unit vectors
    unit_i = torch.tensor(_unit(image.tolist()), dtype=torch.float64)
    unit_t = torch.tensor(_unit(text.tolist()), dtype=torch.float64)
    assert itc_loss(unit_i, unit_t, temperature=0.5, normalize=False).item() == pytest.approx(
        naive_itc(image, text, tau=0.5), rel=1e-10
    )


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="either"):
        itc_loss(torch.randn(2, 3), torch.randn(2, 3), 10.0, temperature=0.1)
    with pytest.raises(ValueError, match=r"\[n, d\]"):
        itc_loss(torch.randn(2, 3), torch.randn(3, 3))


def test_learnable_temperature_init_clamp_and_grad() -> None:
    temp = LearnableTemperature()
    assert temp().item() == pytest.approx(1 / 0.07, rel=1e-6)
    assert temp.temperature == pytest.approx(0.07, rel=1e-6)
    loss = itc_loss(torch.randn(4, 6), torch.randn(4, 6), temp())
    loss.backward()
    assert temp.log_scale.grad is not None and temp.log_scale.grad.abs().item() > 0
    with torch.no_grad():
        temp.log_scale.fill_(math.log(1000.0))
    temp.log_scale.grad = None
    scale = temp()
    assert scale.item() == pytest.approx(100.0)
    scale.backward()
    assert temp.log_scale.grad.item() == 0.0  # clamped: no push beyond the cap


IDS = torch.tensor([7, 3, 9, 7, 3, 5])  # images 7 and 3 have a caption on each rank


def test_same_image_ids_are_all_positives() -> None:
    """ALBEF's targets: uniform over the columns of the same image, against a direct sum."""
    g = torch.Generator().manual_seed(5)
    image = F.normalize(torch.randn(6, 4, generator=g, dtype=torch.float64), dim=-1)
    text = F.normalize(torch.randn(6, 4, generator=g, dtype=torch.float64), dim=-1)
    scale = 1 / 0.07
    sim = scale * image @ text.T
    total = 0.0
    for logits in (sim, sim.T):
        for i in range(6):
            pos = [j for j in range(6) if IDS[j] == IDS[i]]
            log_z = math.log(sum(math.exp(float(x)) for x in logits[i]))
            total += -sum(float(logits[i, j]) - log_z for j in pos) / len(pos) / 6
    got = itc_loss(image, text, scale, ids=IDS, normalize=False)
    assert got.item() == pytest.approx(total / 2, rel=1e-10)
    assert got.item() != pytest.approx(itc_loss(image, text, scale, normalize=False).item())
    unique = itc_loss(image, text, scale, ids=torch.arange(6), normalize=False)
    assert unique.item() == pytest.approx(itc_loss(image, text, scale, normalize=False).item(), rel=1e-12)
    with pytest.raises(ValueError, match="ids"):
        itc_loss(image, text, ids=IDS[:5])


def _forward(proj: torch.nn.Linear, temp: LearnableTemperature, x_img, x_txt):
    return itc_loss(proj(x_img), proj(x_txt) * 0.5 + x_txt[:, : proj.out_features], temp())


def _model() -> tuple[torch.nn.Linear, LearnableTemperature]:
    torch.manual_seed(123)
    return torch.nn.Linear(8, 6).double(), LearnableTemperature(0.1).double()


def _ddp_worker(rank: int, world_size: int, x_img, x_txt, sizes_even, sizes_uneven) -> dict:
    out = {}
    for name, sizes in (("even", sizes_even), ("uneven", sizes_uneven), ("empty", [6, 0])):
        start = sum(sizes[:rank])
        sl = slice(start, start + sizes[rank])
        img = x_img[sl].clone().requires_grad_(True)
        txt = x_txt[sl].clone().requires_grad_(True)
        proj, temp = _model()
        loss = _forward(proj, temp, img, txt)
        loss.backward()  # what DDP does with each rank's loss, even or uneven
        params = [proj.weight.grad, proj.bias.grad, temp.log_scale.grad]
        for p in params:  # what DDP does: average parameter gradients over ranks
            dist.all_reduce(p)
            p /= world_size
        out[name] = {
            "loss": loss.item(),
            "img_grad": img.grad.tolist(),
            "txt_grad": txt.grad.tolist(),
            "param_grads": [p.tolist() for p in params],
        }
    sl = slice(0, 3) if rank == 0 else slice(3, 6)
    proj, temp = _model()
    ids = IDS[sl]
    out["ids_loss"] = itc_loss(proj(x_img[sl]), proj(x_txt[sl]), temp(), ids=ids).item()
    out["local_only"] = itc_loss(x_img[sl], x_txt[sl], gather=False).item()
    return out


def test_ddp_two_ranks_match_one_process() -> None:
    g = torch.Generator().manual_seed(1)
    x_img = torch.randn(6, 8, generator=g, dtype=torch.float64)
    x_txt = torch.randn(6, 8, generator=g, dtype=torch.float64)
    even, uneven = [3, 3], [4, 2]
    res = run_distributed(_ddp_worker, 2, x_img, x_txt, even, uneven)

    img = x_img.clone().requires_grad_(True)
    txt = x_txt.clone().requires_grad_(True)
    proj, temp = _model()
    full = _forward(proj, temp, img, txt)
    full.backward()
    full_params = [proj.weight.grad, proj.bias.grad, temp.log_scale.grad]

    # Even halves: mean of the rank losses is the global loss; each rank's input gradient is the
    # gradient of the *sum* of rank losses (the gather's backward sums over ranks) = W * dL/dx; and the
    # DDP-averaged parameter gradients equal the one-process gradient.
    world = 2
    rank_losses = [r["even"]["loss"] for r in res]
    assert sum(rank_losses) / world == pytest.approx(full.item(), rel=1e-10)
    img_grad = torch.tensor(res[0]["even"]["img_grad"] + res[1]["even"]["img_grad"], dtype=torch.float64)
    txt_grad = torch.tensor(res[0]["even"]["txt_grad"] + res[1]["even"]["txt_grad"], dtype=torch.float64)
    torch.testing.assert_close(img_grad, world * img.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(txt_grad, world * txt.grad, rtol=1e-9, atol=1e-12)
    for r in res:
        for got, want in zip(r["even"]["param_grads"], full_params):
            torch.testing.assert_close(torch.tensor(got, dtype=torch.float64), want, rtol=1e-9, atol=1e-12)

    # Uneven rows (4 + 2, a short last batch): the same three facts hold, because each rank's loss
    # is its rows' share of the global sum (a plain per-rank mean would weigh rank 1's rows double)
    rank_losses = [r["uneven"]["loss"] for r in res]
    assert sum(rank_losses) / world == pytest.approx(full.item(), rel=1e-10)
    assert rank_losses[0] != pytest.approx(rank_losses[1], rel=1e-3)  # the shares differ
    img_grad = torch.tensor(res[0]["uneven"]["img_grad"] + res[1]["uneven"]["img_grad"], dtype=torch.float64)
    torch.testing.assert_close(img_grad, world * img.grad, rtol=1e-9, atol=1e-12)
    for r in res:
        for got, want in zip(r["uneven"]["param_grads"], full_params):
            torch.testing.assert_close(torch.tensor(got, dtype=torch.float64), want, rtol=1e-9, atol=1e-12)

    # a rank without rows (all 6 on rank 0): its loss is 0, not NaN, and nothing else changes
    assert res[1]["empty"]["loss"] == 0.0
    assert sum(r["empty"]["loss"] for r in res) / world == pytest.approx(full.item(), rel=1e-10)
    for r in res:
        for got, want in zip(r["empty"]["param_grads"], full_params):
            torch.testing.assert_close(torch.tensor(got, dtype=torch.float64), want, rtol=1e-9, atol=1e-12)

    # shared image ids across ranks: positives found in the other rank's rows too
    proj, temp = _model()
    with torch.no_grad():
        want = itc_loss(proj(x_img), proj(x_txt), temp(), ids=IDS).item()
    assert sum(r["ids_loss"] for r in res) / world == pytest.approx(want, rel=1e-10)

    # gather=False under DDP is the plain local loss
    assert res[0]["local_only"] == pytest.approx(itc_loss(x_img[:3], x_txt[:3]).item(), rel=1e-10)
    assert res[1]["local_only"] == pytest.approx(itc_loss(x_img[3:], x_txt[3:]).item(), rel=1e-10)
