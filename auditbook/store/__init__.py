"""The run and evidence store. Only this package speaks SQL."""
