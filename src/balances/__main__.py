"""``python -m balances``: the command line."""

from balances.cli import main

main()
