import math

import pytest

from sweeper.train.schedules import warmup_steps_for, wsd_multiplier


def test_wsd_shape():
    total, warm = 100, 10
    lr = [wsd_multiplier(s, total, warmup=warm, cooldown_frac=0.2) for s in range(total)]
    assert lr[0] == pytest.approx(0.1) and lr[9] == pytest.approx(1.0)
    assert all(x == 1.0 for x in lr[10:80])  # stable phase
    cool = lr[80:]
    assert all(a > b for a, b in zip(cool, cool[1:]))  # decays every step
    assert cool[-1] < 0.1
    assert lr[85] == pytest.approx(1 - math.sqrt(5 / 20))  # 1 - sqrt(progress)


def test_warmup_steps():
    assert warmup_steps_for(1000, warmup_frac=0.05) == 50
    assert warmup_steps_for(1000, warmup_frac=0.05, warmup_steps=7) == 7
    assert warmup_steps_for(3, warmup_frac=0.0) == 1
