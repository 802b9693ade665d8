"""The LLM recommender (TALLRec / CoLLM / ThinkRec style): prompts with CF soft tokens, LoRA,
reasoning-mixed training and one-pass Yes-logit scoring."""
