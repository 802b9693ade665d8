"""thinkrec: the library behind the pipeline. It knows nothing of DVC; `stages/` does the I/O."""
