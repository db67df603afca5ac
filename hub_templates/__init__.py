"""Templates of files written into exported Hub repos (read as package data, never imported)."""
