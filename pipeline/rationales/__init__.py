"""RDRec rationales: the user's preference and the item's attributes, distilled by a teacher LLM."""
