"""The trainer: `trainer.train_and_evaluate(config, workdir)` and its pieces."""
