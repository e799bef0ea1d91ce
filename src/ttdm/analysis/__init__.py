"""Measurements of models that are not a pipeline stage themselves: FLOPs, memory, loss landscapes."""
