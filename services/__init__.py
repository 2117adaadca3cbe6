"""swarmd.services."""
