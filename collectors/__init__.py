"""Evidence collectors: one module per AWS service, each declaring RESOURCE_TYPES."""
