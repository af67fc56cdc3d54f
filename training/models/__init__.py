"""Model builders; each module registers its models with :mod:`training.registry`."""
