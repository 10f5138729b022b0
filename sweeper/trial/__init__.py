"""One trial: the typed contract it receives, the Ray trainable, the simulated trainable, injected faults."""
