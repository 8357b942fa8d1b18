"""`python -m bot`: the imagine-bot command line."""

from bot.entry.cli.main import main

raise SystemExit(main())
