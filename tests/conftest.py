"""Puts this folder on ``sys.path`` (pytest's default import mode) so test
helpers shared across layers, such as ``raw_abi_spec``, import by name."""
