"""The running assistant: server, channels, web pages, NLU components, policy, stores, CLI."""
