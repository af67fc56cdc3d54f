"""Benchmarks and end-to-end pipelines that produce reports from real runs."""
