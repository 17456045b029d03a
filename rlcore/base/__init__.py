"""The base layer every package may import and which imports nothing of the project: errors, validation
helpers, atomic checkpoint I/O, seeding, the batch types and the agent protocols (docs/architecture.md)."""
