"""Build and keep fresh a searchable index of a music catalog's text descriptors."""
