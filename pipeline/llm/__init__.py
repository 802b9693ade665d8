"""One small interface for chat requests, served by the `local`, `openai` and `vllm` backends."""
