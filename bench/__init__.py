"""Benchmarks: commands that print figures, and the ceilings they are judged against."""
