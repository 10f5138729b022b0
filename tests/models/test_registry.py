import pytest
import torch

from models.registry import KINDS, build_model, get_model_spec, ladder
from sweeper.errors import SweeperInputError

# Labels of Table 6 (total parameters, embeddings included; MoE: active).
PAPER_TOTALS = {
    "early_fusion": [275e6, 464e6, 932e6, 1.627e9, 2.28e9, 3.354e9],
    "late_fusion": [289e6, 494e6, 1.0e9, 1.75e9, 2.43e9, 3.7e9],
}
PAPER_TOTALS["dense_text"] = PAPER_TOTALS["moe"] = PAPER_TOTALS["early_fusion"]


@pytest.mark.parametrize("kind", KINDS)
def test_paper_ladder_matches_table6_within_3_percent(kind):
    specs = ladder(kind, "paper")
    assert len(specs) == len(PAPER_TOTALS[kind])
    for spec, want in zip(specs, PAPER_TOTALS[kind]):
        embedding = spec.n_params_total - spec.n_params_non_embedding
        got = spec.n_params_active + embedding if kind == "moe" else spec.n_params_total
        assert abs(got - want) / want < 0.03, (spec.size, got, want)
        assert spec.config.n_layers == 24 and spec.seq_len == 1024


def test_paper_moe_has_eight_experts_and_larger_total():
    spec = get_model_spec("moe", "275M")
    dense = get_model_spec("early_fusion", "275M")
    assert spec.config.n_experts == 8 and spec.config.top_k == 1
    assert spec.n_params == spec.n_params_active == pytest.approx(dense.n_params, rel=0.01)
    assert spec.n_params_total > 3 * dense.n_params_total


@pytest.mark.parametrize("kind", KINDS)
def test_tiny_ladder_spans_a_decade_in_ascending_order(kind):
    specs = ladder(kind, "tiny")
    ns = [s.n_params for s in specs]
    assert len(specs) >= 5 and ns == sorted(ns)
    assert ns[-1] / ns[0] >= 10
    assert all(s.seq_len <= 128 and s.config.vocab_size <= 256 for s in specs)
    assert all(s.flops_per_token > 6 * s.n_params for s in specs)  # attention and head on top of 6N


@pytest.mark.parametrize("kind", KINDS)
def test_counts_equal_the_built_module(kind):
    spec = ladder(kind, "tiny")[1]
    model = build_model(spec)
    total = sum(p.numel() for p in model.parameters())
    assert total == spec.n_params_total
    emb = model.tok_embeddings.weight.numel() + model.output.weight.numel()
    assert spec.n_params_non_embedding == total - emb
    if kind == "moe":
        expert = sum(p.numel() for p in model.layers[0].ffn.experts[0].parameters())
        assert spec.n_params == spec.n_params_non_embedding - 7 * spec.config.n_layers * expert
    else:
        assert spec.n_params == spec.n_params_non_embedding


def test_unknown_kind_and_size_list_allowed_values():
    with pytest.raises(SweeperInputError, match="early_fusion"):
        get_model_spec("resnet", "tiny-1")
    with pytest.raises(SweeperInputError, match="tiny-1"):
        get_model_spec("moe", "7B")


def test_build_is_deterministic_under_a_seed():
    spec = get_model_spec("early_fusion", "tiny-1")
    torch.manual_seed(3)
    a = build_model(spec).state_dict()
    torch.manual_seed(3)
    b = build_model(spec).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
