import math

import pytest
import torch

from models.config import MoEConfig
from models.moe import MoEFFN, load_balancing_loss
from models.moe_stats import routing_concentration, specialization_score
from models.registry import get_model_spec, ladder


def small_moe(routing="agnostic") -> MoEFFN:
    base = ladder("moe", "tiny")[0].config
    cfg = MoEConfig(
        dim=base.dim,
        n_layers=1,
        n_heads=base.n_heads,
        ffn_dim=base.ffn_dim,
        vocab_size=base.vocab_size,
        image=base.image,
        routing=routing,
    )
    torch.manual_seed(0)
    return MoEFFN(cfg)


def reference(ffn: MoEFFN, x: torch.Tensor, expert: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    return torch.stack([ffn.experts[int(e)](x[i]) * g for i, (e, g) in enumerate(zip(expert, gate))])


@pytest.mark.parametrize("collapse", [False, True])
def test_every_token_is_processed_even_when_all_pick_one_expert(collapse):
    ffn = small_moe()
    if collapse:  # a router that sends everything to expert 3: a capacity-limited MoE would drop most
        with torch.no_grad():
            ffn.router.weight.zero_()
            ffn.router.weight[3] = 1.0
    x = torch.randn(2, 40, ffn.router.in_features).abs()
    ctx = {"is_image": torch.zeros(2, 40, dtype=torch.bool), "aux": [], "routing": []}
    out = ffn(x, ctx)
    expert, _ = ctx["routing"][0]
    assert expert.numel() == 80
    if collapse:
        assert (expert == 3).all()
    probs = torch.softmax(ffn.router(x.view(80, -1)), dim=-1)
    gate = probs.gather(1, expert[:, None])[:, 0]
    assert torch.allclose(out.view(80, -1), reference(ffn, x.view(80, -1), expert, gate), atol=1e-5)
    assert (out.abs().sum(-1) > 0).all()  # no token left with a zero (dropped) output


def test_aux_loss_is_minimal_for_uniform_routing():
    e, n = 8, 64
    uniform = load_balancing_loss(torch.full((n, e), 1 / e), torch.arange(n) % e, e)
    assert float(uniform) == pytest.approx(1.0)
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        probs = torch.softmax(3 * torch.randn(n, e, generator=g), dim=-1)
        assert float(load_balancing_loss(probs, probs.argmax(-1), e)) >= float(uniform) - 1e-6
    skewed = torch.zeros(n, e)
    skewed[:, 0] = 1.0
    assert float(load_balancing_loss(skewed, torch.zeros(n, dtype=torch.long), e)) == pytest.approx(e)


def test_specialization_score_on_hand_built_routings():
    separate = torch.tensor([[10, 5, 0, 0], [0, 0, 7, 1]])  # experts serve one modality each
    shared = torch.tensor([[4, 4, 2, 2], [40, 40, 20, 20]])  # same distribution: totals differ, score 0
    half = torch.tensor([[3, 1], [1, 3]])  # shares (3/4, 1/4): 1 - H(0.75) for both experts
    assert specialization_score(separate) == pytest.approx(1.0)
    assert specialization_score(shared) == pytest.approx(0.0, abs=1e-12)
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert specialization_score(half) == pytest.approx(1 - h)
    assert math.isnan(specialization_score(torch.tensor([[3, 1], [0, 0]])))


def test_routing_concentration():
    assert routing_concentration(torch.tensor([5, 5, 5, 5])) == pytest.approx(0.0)
    assert routing_concentration(torch.tensor([0, 9, 0, 0])) == pytest.approx(1.0)


def test_modality_aware_routing_keeps_modalities_apart():
    ffn = small_moe("aware")
    x = torch.randn(1, 64, ffn.router.in_features)
    is_image = torch.arange(64)[None] % 3 == 0
    ctx = {"is_image": is_image, "aux": [], "routing": []}
    ffn(x, ctx)
    expert, img = ctx["routing"][0]
    assert (expert[img] >= 4).all() and (expert[~img] < 4).all()


def test_moe_model_reports_routing_and_aux_loss():
    from models.registry import build_model
    from sweeper.data import train_batches

    spec = get_model_spec("moe", "tiny-1")
    torch.manual_seed(0)
    out = build_model(spec)(next(train_batches(spec, None, batch_size=4, seed=0)))
    assert len(out.routing) == spec.config.n_layers
    assert out.aux_loss.item() >= 1.0 - 1e-4
    assert out.loss.item() == pytest.approx(out.lm_loss.item() + 0.01 * out.aux_loss.item(), rel=1e-6)
