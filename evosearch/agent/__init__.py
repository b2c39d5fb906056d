"""Training a proposer LLM on campaign archives: datasets, reward, trainers, serving."""
