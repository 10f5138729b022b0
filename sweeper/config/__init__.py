"""The search-space schema (frozen pydantic models), loading and `extends`, and the tune section's rules."""
