"""Trial resource requests, and the check that the cluster can ever grant them."""

from __future__ import annotations

import pytest

from sweeper.config.schema import load_config
from sweeper.errors import SweeperInputError
from sweeper.plan.resources import SIMULATED_CPU, Request, check_feasible, requests_for, trial_request

LAPTOP = [{"CPU": 2.0, "memory": 8e9}]
GPU_NODES = [{"CPU": 2.0}, {"CPU": 16.0, "GPU": 8.0}]


@pytest.mark.parametrize("space", ["text_chinchilla", "early_fusion", "late_fusion", "moe", "tiny"])
def test_a_simulated_trial_takes_a_sliver_of_a_cpu_whatever_the_space_asks(space):
    cfg = load_config(space, trainable="simulated")
    req = trial_request(cfg)
    assert req.bundle() == {"CPU": SIMULATED_CPU}
    check_feasible(requests_for(cfg), LAPTOP)  # a paper space plans on a 2-core laptop


def test_the_paper_spaces_ask_for_a_gpu_per_real_trial():
    cfg = load_config("text_chinchilla")
    assert trial_request(cfg).bundle() == {"CPU": 8.0, "GPU": 1.0}
    # the tune path passes its simulated trainable explicitly
    assert trial_request(cfg, simulated=True).bundle() == {"CPU": SIMULATED_CPU}


def test_a_gpu_request_on_a_cpu_cluster_names_the_key_the_value_and_the_fix():
    cfg = load_config("tiny", **{"ray.gpus_per_trial": 1})
    with pytest.raises(SweeperInputError) as err:
        check_feasible(requests_for(cfg), LAPTOP)
    msg = str(err.value)
    assert err.value.field == "ray.gpus_per_trial" and err.value.value == 1.0
    assert "has 0 GPUs and 2 CPUs" in msg and "--set ray.gpus_per_trial=0" in msg


def test_more_gpus_than_any_node_has_suggests_the_largest_node():
    with pytest.raises(SweeperInputError, match=r"ray.gpus_per_trial=8 \(the most GPUs on one node\)"):
        check_feasible([Request(cpu=1, gpu=16)], GPU_NODES)


def test_cpus_must_fit_on_a_node_that_also_has_the_gpus():
    check_feasible([Request(cpu=16, gpu=1)], GPU_NODES)
    with pytest.raises(SweeperInputError) as err:
        check_feasible([Request(cpu=17, gpu=1)], GPU_NODES)
    assert err.value.field == "ray.cpus_per_trial" and "--set ray.cpus_per_trial=16" in str(err.value)
    # a CPU-only bundle may use the whole of any node, and no more
    check_feasible([Request(cpu=16)], GPU_NODES)
    with pytest.raises(SweeperInputError, match="cpus_per_trial"):
        check_feasible([Request(cpu=2.5)], LAPTOP)


def test_distributed_workers_are_checked_under_their_own_keys():
    cfg = load_config("tiny", **{"distributed.enabled": True, "distributed.use_gpu": True})
    reqs = requests_for(cfg)
    # every trial goes distributed (min_params 0): the trial only coordinates, the workers hold the GPUs
    assert [r.bundle() for r in reqs] == [{"CPU": SIMULATED_CPU}, {"CPU": 1.0, "GPU": 1.0}]
    with pytest.raises(SweeperInputError) as err:
        check_feasible(reqs, LAPTOP)
    assert err.value.field == "distributed.gpus_per_worker"
    assert "--set distributed.gpus_per_worker=0" in str(err.value)
