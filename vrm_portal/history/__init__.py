"""What brands did with a consumer's data: interactions they pushed and their reads."""
