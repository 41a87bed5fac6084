"""Claude Code usage as ccusage reads it: acceptance, dedup, prices, report rows. Pure: no I/O.

The one place the product's usage numbers are defined. Every rule here is ccusage 20.x's
(``rust/crates/ccusage/src/adapter/claude/``), held equal to the real binary by the parity tests.
"""
