"""Runtime strategies: single model, pair cascade, converter path, memoization."""
