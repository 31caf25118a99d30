"""auditbook: SOC 2 evidence workbench for AWS."""

__version__ = "0.1.0"
