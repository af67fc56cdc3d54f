"""Datasets by spec string: ``synthetic-actions[:key=value,...]``, more in later modules."""

from training.data.spec import Dataset, Split, load_dataset, parse_spec

__all__ = ["Dataset", "Split", "load_dataset", "parse_spec"]
