"""Verified reasoning traces from a teacher LLM (ThinkRec thinking activation)."""
