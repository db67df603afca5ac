"""Bundled example data of the demo, and the released modeling files' hashes that `hubheads verify` knows."""
