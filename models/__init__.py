"""Churn and expansion models: training, baselines, calibration, explanations, segmentation."""
