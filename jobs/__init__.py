"""The Spark side of cliplake: sessions, Delta tables, one module per pipeline, the CLI."""
