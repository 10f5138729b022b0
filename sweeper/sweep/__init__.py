"""The driver: parent run, Tune or in-process runner, session, ledger, stop rule, interruption, forecast."""
