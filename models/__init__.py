"""Model family: registry, configs, layers and the architectures."""
