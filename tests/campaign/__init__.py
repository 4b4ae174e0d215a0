"""The bad-input campaign: every shipped input file mutated field by field, every option fed
bad values, every output path made unwritable; each case run in-process through
``itb.entrypoints.cli.main.run`` and held to the one-line-error promise."""
