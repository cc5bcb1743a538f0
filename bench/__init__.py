"""The availability benchmark (issue 4): data generator, floor app, runner. Not part of the app."""
