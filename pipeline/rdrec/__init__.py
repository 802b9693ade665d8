"""RDRec's student: the project's backbone + a new LoRA + CF projector, trained multi-task on the
teacher's rationales (user preference, item attributes) and on ranking, scored on top-N candidates."""
