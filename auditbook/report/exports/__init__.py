"""Findings of a stored run in interchange formats: the run's view and `render` (view.py), the
registry of formats (formats.py: the export_formats seam), and the built-ins (ocsf.py, asff.py,
oscal.py). Kept empty so that listing the formats imports nothing heavy."""
