"""The project's model functions (DerivaML models: ``ml_instance`` and ``execution`` keywords)."""
