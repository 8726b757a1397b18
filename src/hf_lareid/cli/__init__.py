"""The `lareid` command line: one module per subcommand group, plus the pictures."""
