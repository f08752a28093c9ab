"""The relay's HTTP API, one router per concern; the bearer check is one shared dependency."""
