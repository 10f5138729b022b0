import pytest

from models.registry import KINDS, get_model_spec, ladder
from sweeper.train.recipes import paper_hparams, paper_warmup_steps, table_recipe, tiny_hparams


def test_paper_recipe_values():
    spec = get_model_spec("early_fusion", "932M")
    hp = paper_hparams(spec, n_tokens=10_000 * 2048 * 1024)
    assert hp.lr == 5e-4 and hp.batch_size * spec.seq_len == 2048 * 1024
    assert hp.betas == (0.9, 0.95) and hp.weight_decay == 1e-4 and hp.grad_clip == 1.0
    assert hp.cooldown_frac == 0.2 and hp.warmup_steps == 2500 and hp.vision_lr_mult == 0.1


def test_paper_warmup_rule():
    assert paper_warmup_steps(3000, "early_fusion") == 1000
    assert paper_warmup_steps(10_000, "late_fusion") == 2500
    assert paper_warmup_steps(50_000, "early_fusion") == 5000
    assert paper_warmup_steps(10_000, "moe") == 2500 and paper_warmup_steps(30_000, "moe") == 5000


@pytest.mark.parametrize("kind", KINDS)
def test_every_size_has_a_recipe_and_lr_falls_with_width(kind):
    for name in ("tiny", "paper"):
        lrs = [table_recipe(s, 10**9).lr for s in ladder(kind, name)]
        assert lrs == sorted(lrs, reverse=True) and all(lr > 0 for lr in lrs)


def test_tiny_batch_shrinks_for_short_runs():
    spec = ladder("early_fusion", "tiny")[0]
    assert tiny_hparams(spec, 10**8).batch_size == 16
    short = tiny_hparams(spec, 100 * spec.seq_len * 4)
    assert 2 <= short.batch_size < 16
