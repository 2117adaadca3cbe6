"""swarmd's benchmarks: ``python -m benchmarks`` (quick) or ``--full``.

See :mod:`benchmarks.__main__` for what runs and :mod:`benchmarks.fake_model_server`
for the model double every scenario talks to.
"""
