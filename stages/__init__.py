"""Thin DVC stage entry points: read the stage's params, call `pipeline`, write outputs atomically."""
