"""ValidMind integration: the backend HTTP client (`client`), discovery routes (`api`) and the
simulator (`sim`)."""
