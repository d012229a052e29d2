"""The allocations bodies: requests, answers, recommendations, progress."""
