"""Interoperability with the evaluation tools researchers already run (lm-evaluation-harness)."""
