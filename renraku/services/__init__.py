"""Domain operations over the database, shared by the phone line, the portal and the CLI."""
