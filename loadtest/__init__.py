"""Load generators that drive the brokerage through its public API."""
