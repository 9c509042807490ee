"""The `smalltts` command line: `main` holds the command table, each command is one module with `register`."""
