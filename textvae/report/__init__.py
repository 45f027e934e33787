"""Tables and plots over run folders."""
