"""Baselines beside the LLM: each one is a coder whose run is stored like an LLM run.

Estimators (scikit-learn conventions) live one family per module: embeddings, tfidf, lexicon, text2text,
classifier, finetune; hub pulls the encoder models; runner trains, labels and stores.
"""
