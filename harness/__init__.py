"""The service's real processes, started as production starts them: for the tests and the benchmark."""
