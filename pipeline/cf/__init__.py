"""Collaborative-filtering baselines (MF, LightGCN, SASRec) trained pointwise with BCE.

Every model has the same small interface: `calculate_loss(batch)` and `predict(batch)` (logits),
plus `user_vectors(batch)` / `item_vectors()` for export. A batch is a dict of tensors, see
`pipeline.cf.data`.
"""
