"""Layer 5, the tools: the ``pytest-deriva`` command, which reads and sets up what the lower
layers record and never runs an experiment's lifecycle itself."""
