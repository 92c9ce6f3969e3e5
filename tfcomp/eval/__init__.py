"""Evaluation of trained models: rates, distortions and accuracies as plain dicts."""
