"""The training loop and its parts: classifier, losses, early stopping, prediction."""
