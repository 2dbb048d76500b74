"""What every role shares: configuration, logs, tasks, paths, run lock, errors, TLS, sealing."""
