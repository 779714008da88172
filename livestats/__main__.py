"""``python -m livestats``: the same as the ``livestats`` command."""

from livestats.cli import main

raise SystemExit(main())
