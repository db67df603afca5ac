"""Remote code with a planted fault, for the tests of hubheads' output checks (see modeling.py)."""

from transformers import PretrainedConfig


class PlantedConfig(PretrainedConfig):
    """A bag-of-embeddings classifier whose `fault` selects how its outputs break: `"nan"`, `"index"`, `"random"` or
    `"none"`."""

    model_type = "planted"

    def __init__(self, vocab_size=64, hidden_size=8, max_position_embeddings=32, fault="none", **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.max_position_embeddings = max_position_embeddings
        self.fault = fault
        super().__init__(**kwargs)
