"""Item keywords: item text -> LLM summary -> cleaned keyword list (ThinkRec keyword summarization)."""
