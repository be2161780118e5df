"""Metrics, backtests, threshold calibration, drift, NRR analytics and the report."""
