"""secml-detection local runtime: data generator, IP Insights engine, offline runner, fleet."""

__version__ = "0.1.0"
