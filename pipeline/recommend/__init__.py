"""Recommendations for one user: CF candidates re-ranked by a trained LLM recommender, with reasons."""
