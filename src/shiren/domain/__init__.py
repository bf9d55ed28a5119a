"""Pure value objects and rules of the service, with no I/O: ID numbers (GB 11643-1999), the
step-up policy, decisions, retry / lock-out rules and the entities as frozen dataclasses.

Nothing here reads a file, a socket, a database or settings, so every rule can be tested
exhaustively and reused by storage, privacy and the service alike.
"""
