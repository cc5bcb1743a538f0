"""The availability benchmark (bench/RESULTS.md): data generator, floor app, runner. Not part of the app."""
