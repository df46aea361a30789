"""LLM labeling: providers, the local model, structured answers, and the run engine."""
