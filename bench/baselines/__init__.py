"""Plain reference implementations used only by the benchmarks."""
