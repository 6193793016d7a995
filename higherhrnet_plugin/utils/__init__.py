from .cli import console_to_file, describe_error, run_cli

__all__ = ['console_to_file', 'describe_error', 'run_cli']
