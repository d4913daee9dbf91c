"""neurohdl flows: config, registry, emission, synthesis, CLI."""
