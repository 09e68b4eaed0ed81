"""Network adapters and the contract they implement (see adapters.contract)."""
