"""MLflow in and out: parent and child runs, the outbox, RunRecord / RunTable."""
