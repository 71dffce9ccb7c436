"""Per-partition work of cliplake: pixels, models and bytes, with no SparkSession.

Nothing in this package imports pyspark: every stage is a plain function (or a small class
holding a loaded model) from records to records, wrapped by ``jobs`` into mapInPandas calls.
"""
