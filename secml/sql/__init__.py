"""CloudTrail tuples in SQL: one query (cloudtrail_tuples.sql), run by Athena or by DuckDB."""
