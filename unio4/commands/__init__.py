"""One module per ``unio4`` command: ``WORDS`` (its name), ``HELP``, ``add_arguments(parser)`` and ``run(args)``."""
