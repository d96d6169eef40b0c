class StackError(RuntimeError):
    """A stack problem with one plain sentence naming the cause and the fix."""
