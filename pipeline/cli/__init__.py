"""The `thinkrec` command: entry points over the pipeline's artifacts, run from the project root
(like the stages, they read params.yaml and data/; they are commands, not DVC stages)."""
