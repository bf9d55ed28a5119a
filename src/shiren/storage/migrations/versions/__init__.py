"""Migration scripts, oldest first; hand-reviewed, never edited once released."""
