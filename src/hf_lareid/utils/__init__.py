"""Helpers with no re-ID logic, below every other package: errors, atomic file writing, integrity checks of saved
files, output-path claims, image reading and optional extras. Nothing here imports the rest of `hf_lareid`."""
