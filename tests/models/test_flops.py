"""FLOPs per token against torch's own counter on a real forward + backward."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from models.flops import batch_composition, training_flops, training_flops_per_token
from models.registry import KINDS, build_model, ladder
from sweeper.data import train_batches


def measured_flops_per_token(spec, batch) -> float:
    torch.manual_seed(0)
    model = build_model(spec)
    with FlopCounterMode(display=False) as counter:
        model(batch).loss.backward()
    return counter.get_total_flops() / batch["tokens"].numel()


@pytest.mark.parametrize("kind", KINDS)
def test_every_tiny_model_matches_flop_counter(kind):
    # 10 sequences of the 45/45/10 mixture: 5 caption, 4 interleaved, 1 text
    for spec in ladder(kind, "tiny"):
        batch = next(train_batches(spec, (0.45, 0.45, 0.10), batch_size=10, seed=1))
        measured = measured_flops_per_token(spec, batch)
        exact = training_flops_per_token(spec.config, spec.seq_len, batch_composition(batch))
        assert exact == pytest.approx(measured, rel=0.01), spec.size
        assert spec.flops_per_token == pytest.approx(measured, rel=0.05), spec.size


def test_text_only_batch_for_a_multimodal_model():
    spec = ladder("early_fusion", "tiny")[0]
    batch = next(train_batches(spec, (0, 0, 1), batch_size=4, seed=0))
    assert not batch["is_image"].any()
    exact = training_flops_per_token(spec.config, spec.seq_len, batch_composition(batch))
    assert exact == pytest.approx(measured_flops_per_token(spec, batch), rel=0.01)


def test_late_fusion_follows_6_nv_dv_plus_6_n_d():
    # Without attention and head, C per token is 6 (N_v D_v + N D) / (D + D_v)
    spec = ladder("late_fusion", "tiny")[2]
    cfg = spec.config
    comp = {"image": 0.3, "scored": 0.0}
    no_attn = training_flops_per_token(cfg, 0, comp)  # attn_len 0 removes decoder attention
    enc = cfg.encoder
    enc_attn = enc.n_layers * 4 * cfg.image.n_patches * enc.dim * 3 * comp["image"]
    skipped = 2 * cfg.image.patch_dim * enc.dim * comp["image"]
    n_dec = cfg.n_layers * (4 * cfg.dim**2 + 3 * cfg.dim * cfg.ffn_dim)
    n_vis = (
        enc.n_layers * (4 * enc.dim**2 + 3 * enc.dim * enc.ffn_dim)
        + cfg.image.patch_dim * enc.dim
        + enc.dim * cfg.dim
    )
    six_nd = 6 * (n_vis * comp["image"] + n_dec)
    assert no_attn - enc_attn + skipped == pytest.approx(six_nd, rel=1e-9)


def test_training_flops_scales_with_tokens():
    spec = ladder("moe", "tiny")[0]
    assert training_flops(spec, 1e6) == pytest.approx(1e6 * spec.flops_per_token)
