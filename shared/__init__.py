"""The course's LLM core: a pure-JAX language model and the tools to make it fast.

One module per concept (config, data, model, attention, train, checkpoint,
sampling, hardware, timing, ...); the lessons import these and never copy them.
"""
