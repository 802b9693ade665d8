"""Explanation quality: text-overlap and embedding metrics, and the model's generated reasoning."""
