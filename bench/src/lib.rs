//! Benchmarks for `make bench`; each binary under src/bin prints its figures as Markdown.
