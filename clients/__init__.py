"""swarmd.clients."""
