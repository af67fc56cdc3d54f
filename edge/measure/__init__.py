"""Latency and energy measurement for the runtime."""

from edge.measure.energy import EnergyReading, Meter, make_meter
from edge.measure.latency import LatencyRecorder, percentiles

__all__ = ["EnergyReading", "LatencyRecorder", "Meter", "make_meter", "percentiles"]
