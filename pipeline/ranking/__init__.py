"""Ranking over the whole catalogue: who is ranked, against what, and the one ranking path that
evaluation and `thinkrec recommend` share (retrieve, re-rank, fuse)."""
