"""Text to what an engine reads: normalisation, clause splitting, script runs, phonemes."""
