"""Loopback stand-ins for the services Intern talks to (Slack, the Hub, an OpenAI-compatible LLM,
the dataset viewer, paper sources, documentation). They speak the real wire formats so the real
client libraries can be pointed at them, for the test suite and for `intern demo`.
They bind to 127.0.0.1 only."""
