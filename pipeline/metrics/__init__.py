"""Recommendation metrics in plain numpy: classification (AUC, UAUC, ROC), per-user ranking
(NDCG/MAP/HR@K) and sampled top-N (HR/NDCG@K). Knows nothing of files or DVC."""
