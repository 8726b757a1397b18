"""The `lareid` subcommands, one module each (listed in `hf_lareid_cli.SUBCOMMANDS`, the entry point), plus the pictures."""
