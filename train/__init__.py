"""Training, evaluation and dataset preparation for `fer_model` (built on accelerate, datasets and evaluate)."""
