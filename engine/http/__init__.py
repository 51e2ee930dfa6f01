"""The HTTP layer: parse and validate, call the flow, render. Nothing else."""
