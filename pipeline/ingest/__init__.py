"""Ingest: raw dataset files (RecBole atomic, ML-100k, ML-1M, Amazon 2014/2018, Yelp) streamed into
the Parquet artifacts declared in pipeline/schemas.py. Entry point: `run_ingest(IngestParams)`."""
