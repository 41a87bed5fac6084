"""Test and benchmark corpora (import the submodules; this package re-exports nothing).

- ``ingestor.corpus.generate``: a deterministic, realistic Claude Code transcript tree.
- ``ingestor.corpus.reference``: ccusage's numbers recomputed from such a tree, independently of
  the product's parsing — the oracle tests and benchmarks compare against.

Nothing is imported here so ``python -m ingestor.corpus.generate`` runs without a double import.
"""
