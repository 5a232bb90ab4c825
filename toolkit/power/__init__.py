"""Power rails, sampling and energy accounting."""
