"""The command line, ``python -m dinodiag ...`` (:func:`main`; :func:`build_parser`).

One module per command group, each adding its sub-parser and running its command: ``check``,
``stats``, ``presets``, ``open_run`` and ``app`` (``train`` is ``dinodiag.train.cli``); ``args``
holds what they share (the pipeline and sampling options, argparse types, output-path checks,
the exit codes) and ``commands`` the parser, the examples of ``--help`` and :func:`main`. No
module imports torch before the arguments are parsed: ``--help`` answers in a tenth of a second.
"""

from dinodiag.cli.commands import build_parser, main

__all__ = ["build_parser", "main"]
