"""Provider-neutral machinery: quota limiter, retries, transport, batch fan-out.

Nothing in here knows about any vendor; providers describe their requests and
answers, and the core paces, signs (through the provider), sends and retries.
"""
