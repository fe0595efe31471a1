"""Health checks of real servers: their state, the weights it sets, the service's quorum."""
