"""Meta-gradient tuning of a rule's numeric constants (``evosearch metatune``)."""
