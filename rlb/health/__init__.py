"""Health checks: checkers probe real servers, a state machine turns results into weights."""
