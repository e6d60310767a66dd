"""Workers: dramatiq actors that carry the store's decisions out, the outbox relay, the clock, key providers."""
