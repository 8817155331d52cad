"""The ``ampora`` command line."""
