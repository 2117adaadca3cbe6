"""Built-in executor plugins: ``local`` (asyncio tasks) and ``remote`` (another executor service)."""
