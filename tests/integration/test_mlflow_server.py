"""A simulated sweep against a real `mlflow server` on loopback, read back through the REST client."""

import os

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server_sweep(ray_local, mlflow_server):
    from sweeper import Sweeper

    url, root = mlflow_server.url, mlflow_server.root
    here = os.getcwd()
    os.chdir(root)
    try:
        sweeper = Sweeper(
            "tiny",
            trainable="simulated",
            budget=2e14,
            slices=[4.7e12, 1.9e13],
            tracking_uri=url,
            experiment="server-test",
            n_bootstrap=10,
        )
        plan = sweeper.plan()
        result = sweeper.run(progress=lambda line: None)
    finally:
        os.chdir(here)
    return url, plan, result


def test_parent_children_and_refits_are_on_the_server(server_sweep):
    url, plan, result = server_sweep
    client = MlflowClient(tracking_uri=url)
    experiment = client.get_experiment_by_name("server-test")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # proxied through the server
    parents = client.search_runs([experiment.experiment_id], "tags.`sweeper.role` = 'sweep'")
    assert [p.info.run_id for p in parents] == [result.parent_run_id]
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["sweeper.stop_reason"] == "plan complete"
    assert float(parent.data.params["budget"]) == 2e14 and parent.data.params["fit.law"] == "chinchilla"
    assert {"fit.json", "runs.csv", "plan.json"} <= {
        a.path for a in client.list_artifacts(parent.info.run_id)
    }

    children = client.search_runs(
        [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert sorted(c.data.tags["sweeper.point_id"] for c in children) == sorted(
        t.point_id for t in plan.trials
    )
    by_point = {t.point_id: t for t in plan.trials}
    for child in children:
        planned = by_point[child.data.tags["sweeper.point_id"]]
        assert child.data.tags["sweeper.role"] == "trial" and child.data.tags["source"] == "simulated"
        assert child.data.tags["sweeper.status"] == "ok"
        assert int(child.data.params["n_params"]) == planned.n_params
        assert int(child.data.params["n_tokens"]) == planned.n_tokens
        assert child.data.params["kind"] == planned.kind
        assert child.data.metrics["loss"] > 0 and child.data.metrics["flops"] > 0

    refits = client.get_metric_history(parent.info.run_id, "refit.ci_halfwidth.a")
    spent = client.get_metric_history(parent.info.run_id, "refit.flops_spent")
    # Every refit logs its compute; its CI half-width only where the bootstrap gave an interval
    # (an early refit on a handful of runs may not), so the CI steps are a subset, ending at the last refit.
    assert sorted(m.step for m in spent) == list(range(1, len(spent) + 1))
    assert len(refits) >= 3 and {m.step for m in refits} <= {m.step for m in spent}
    assert max(m.step for m in refits) == len(spent)
    assert all(m.value > 0 for m in refits)
    assert [m.value for m in sorted(spent, key=lambda m: m.step)] == sorted(m.value for m in spent)


def test_report_and_status_read_the_server(server_sweep, tmp_path, capsys):
    from sweeper.cli import main

    url, plan, result = server_sweep
    assert main(["status", "--experiment", "server-test", "--tracking-uri", url]) == 0
    n = len(plan.trials)
    assert f"{n} done of {n} planned" in capsys.readouterr().out
    assert main(["report", "--experiment", "server-test", "--tracking-uri", url, "--out", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 6 and f"{result.fit.derived['a']:.4g}" in page
