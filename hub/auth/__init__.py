"""Authentication: registered department apps, their API tokens, and the principal a token
becomes."""
