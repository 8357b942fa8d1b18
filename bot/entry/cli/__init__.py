"""The `imagine-bot` command line: library, index, imagine/chat, serve and demo commands."""
